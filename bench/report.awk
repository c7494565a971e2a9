# Turns the runner's raw lines (build/bench-results/raw.txt) into the table
# of medians with Edo's ratio to each peer (markdown, on stdout) and, when
# -v chart=FILE is given, the chart's data file. Portable awk (mawk, gawk).
#
# Input lines, as bench/run.sh writes them:
#   run wl=<workload> impl=<impl> threads=<n> rep=<r> status=ok|missing|failed
#   bench=<name> impl=<impl> threads=<n> value=<v> unit=<u> wl=<workload> rep=<r>
# Variables: order = the manifest's workloads, space-separated;
#            impls = implementation columns, Edo first; reps = runs planned.
#
# Ratio = Edo / peer, for every unit. For ns/op, ms, s and bytes lower is
# better (a ratio under 1 means Edo is better); for ops/s and ops/cpu-s
# higher is better (a ratio over 1 means Edo is better). The chart plots
# "Edo's advantage", the same ratio turned so that over 1 always means Edo
# is better; the chart data holds its log2 (0 = parity).

function kv(    i, p) {
	delete F
	for (i = 1; i <= NF; i++) {
		p = index($i, "=")
		if (p > 0) F[substr($i, 1, p - 1)] = substr($i, p + 1)
	}
}

function lower_better(u) { return !(u == "ops/s" || u == "ops/cpu-s") }

function median(list,    n, a, i, j, t) {
	n = split(list, a, " ")
	for (i = 2; i <= n; i++) {
		t = a[i] + 0
		for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]
		a[j + 1] = t
	}
	if (n % 2) return a[(n + 1) / 2] + 0
	return (a[n / 2] + a[n / 2 + 1]) / 2
}

function fmt(v,    a) {
	a = v < 0 ? -v : v
	if (a >= 1e9) return sprintf("%.3gG", v / 1e9)
	if (a >= 1e6) return sprintf("%.3gM", v / 1e6)
	if (a >= 1e4) return sprintf("%.3gk", v / 1e3)
	if (a >= 100) return sprintf("%.0f", v)
	if (a >= 10) return sprintf("%.1f", v)
	return sprintf("%.2f", v)
}

# Registers a table row (bench name at a thread count) in display order.
function add_row(wl, b, t,    k) {
	k = b SUBSEP t
	if (k in rowwl) return
	rowwl[k] = wl
	rowb[k] = b
	rowt[k] = t
	if (!((wl SUBSEP b) in bseq)) bseq[wl SUBSEP b] = ++nb
	rows[++nrows] = k
}

BEGIN {
	nw = split(order, W, " ")
	for (i = 1; i <= nw; i++) wseq[W[i]] = i
	ni = split(impls, IM, " ")
}

$1 == "run" {
	kv()
	k = F["wl"] SUBSEP F["impl"] SUBSEP F["threads"]
	if (F["status"] != "ok") {
		if (!(k in status) || status[k] == "missing") status[k] = F["status"]
		nbad[k]++
	}
	ran[F["wl"] SUBSEP F["threads"]] = 1
	next
}

/^bench=/ {
	kv()
	k = F["bench"] SUBSEP F["threads"]
	add_row(F["wl"], F["bench"], F["threads"])
	unit[k] = F["unit"]
	vals[k SUBSEP F["impl"]] = vals[k SUBSEP F["impl"]] " " F["value"]
	nval[k SUBSEP F["impl"]]++
	next
}

END {
	# Workloads that ran but gave no result line at all still get a row.
	for (wt in ran) {
		split(wt, p, SUBSEP)
		found = 0
		for (r = 1; r <= nrows; r++) if (rowwl[rows[r]] == p[1] && rowt[rows[r]] == p[2]) found = 1
		if (!found) add_row(p[1], p[1], p[2])
	}
	# Sort rows: manifest order, then first appearance of the name, then threads.
	for (i = 2; i <= nrows; i++) {
		x = rows[i]
		for (j = i - 1; j >= 1 && after(rows[j], x); j--) rows[j + 1] = rows[j]
		rows[j + 1] = x
	}

	hdr = "| workload | threads | unit | better |"
	sep = "|---|---:|---|---|"
	for (i = 1; i <= ni; i++) { hdr = hdr " " IM[i] " |"; sep = sep "---:|" }
	for (i = 2; i <= ni; i++) { hdr = hdr " edo/" IM[i] " |"; sep = sep "---:|" }
	print hdr
	print sep
	nchart = 0
	for (r = 1; r <= nrows; r++) {
		k = rows[r]
		u = (k in unit) ? unit[k] : "—"
		line = "| " rowb[k] " | " rowt[k] " | " u " | " (u == "—" ? "—" : (lower_better(u) ? "lower" : "higher")) " |"
		has_edo = 0
		for (i = 1; i <= ni; i++) {
			m = k SUBSEP IM[i]
			sk = rowwl[k] SUBSEP IM[i] SUBSEP rowt[k]
			if (m in vals) {
				med[i] = median(vals[m])
				# Instruction counts (_instr) take fewer runs by design.
				cell = fmt(med[i]) (nval[m] < reps && u != "instr" ? "*" : "")
				if (i == 1) has_edo = 1
			} else {
				med[i] = ""
				cell = (sk in status) ? status[sk] : ""
			}
			line = line " " cell " |"
		}
		cl = rowb[k] "/" rowt[k]
		any = 0
		for (i = 2; i <= ni; i++) {
			cv[i] = "-"
			if (has_edo && med[i] != "" && med[i] > 0 && med[1] > 0) {
				ratio = med[1] / med[i]
				line = line " " sprintf("%.2f", ratio) " |"
				# log2 of Edo's advantage: bars go up when Edo is better.
				cv[i] = sprintf("%.4f", log(lower_better(u) ? 1 / ratio : ratio) / log(2))
				any = 1
			} else {
				line = line " — |"
			}
		}
		print line
		# The chart leaves out the CPU rows (their _per_cpu rows say it; the
		# metrics A/B's _cpu and _instr compare Edo with itself), the p99
		# latencies (too noisy with the load on the same cores) and the echo
		# servers' spread (fairness, not speed).
		if (any && u != "s" && rowb[k] !~ /_(p99|cpu|instr|spread)$/) {
			nchart++
			clabel[nchart] = cl
			for (i = 2; i <= ni; i++) {
				cval[nchart, i] = cv[i]
				if (cv[i] != "-") cused[i] = 1
			}
		}
	}
	if (chart == "") exit
	# Chart data: one line per row, one column per peer that has a ratio.
	printf "label" > chart
	for (i = 2; i <= ni; i++) if (i in cused) printf " %s", IM[i] > chart
	printf "\n" > chart
	for (r = 1; r <= nchart; r++) {
		printf "%s", clabel[r] > chart
		for (i = 2; i <= ni; i++) if (i in cused) printf " %s", cval[r, i] > chart
		printf "\n" > chart
	}
	close(chart)
}

function after(a, b) {
	if (wseq[rowwl[a]] != wseq[rowwl[b]]) return wseq[rowwl[a]] > wseq[rowwl[b]]
	if (bseq[rowwl[a] SUBSEP rowb[a]] != bseq[rowwl[b] SUBSEP rowb[b]])
		return bseq[rowwl[a] SUBSEP rowb[a]] > bseq[rowwl[b] SUBSEP rowb[b]]
	return rowt[a] + 0 > rowt[b] + 0
}
