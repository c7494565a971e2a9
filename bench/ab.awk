# The metrics A/B of the report (bench/README.md, edo-nometrics): for every
# row where both edo and edo-nometrics have results, what the always-on
# metrics cost, and what the optional collection (edo-metrics) adds on top.
# Reads the runner's raw lines (build/bench-results/raw.txt), as report.awk;
# prints a markdown table, or nothing when no row has both. Portable awk.
#
# Runs are paired: run r of edo with run r of edo-nometrics, which the runner
# made one right after the other (interleaved), so that a change of load on
# the machine hits both alike. A column gives the median of the paired
# ratios, and their spread as the middle half of them (25th to 75th
# percentile) with the number of pairs (a single pair: its ratio alone, as
# the one instruction count of the current-thread runtime).

function kv(    i, p) {
	delete F
	for (i = 1; i <= NF; i++) {
		p = index($i, "=")
		if (p > 0) F[substr($i, 1, p - 1)] = substr($i, p + 1)
	}
}

# Sorts a[1..n] numerically (insertion sort: n is small).
function sort_n(a, n,    i, j, t) {
	for (i = 2; i <= n; i++) {
		t = a[i]
		for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]
		a[j + 1] = t
	}
}

# The p-quantile of sorted a[1..n], interpolated.
function quantile(a, n, p,    x, i) {
	if (n == 1) return a[1]
	x = 1 + p * (n - 1)
	i = int(x)
	return i >= n ? a[n] : a[i] + (x - i) * (a[i + 1] - a[i])
}

# "1.012 (0.998–1.020, 15)": median (middle half, pairs) of num/den per run.
function paired(row, num, den,    r, n, a, med) {
	n = 0
	for (r = 1; r <= maxrep; r++) {
		if (((row, num, r) in val) && ((row, den, r) in val) && val[row, den, r] > 0)
			a[++n] = val[row, num, r] / val[row, den, r]
	}
	if (n == 0) return "—"
	sort_n(a, n)
	med = quantile(a, n, 0.5)
	if (n == 1) return sprintf("%.3f", med)
	return sprintf("%.3f (%.3f–%.3f, %d)", med, quantile(a, n, 0.25), quantile(a, n, 0.75), n)
}

/^bench=/ {
	kv()
	row = F["bench"] SUBSEP F["threads"]
	if (!(row in unit)) {
		rows[++nrows] = row
		unit[row] = F["unit"]
	}
	val[row, F["impl"], F["rep"] + 0] = F["value"]
	if (F["rep"] + 0 > maxrep) maxrep = F["rep"] + 0
	have[row, F["impl"]] = 1
}

END {
	n = 0
	for (i = 1; i <= nrows; i++) {
		row = rows[i]
		if (!((row, "edo") in have) || !((row, "edo-nometrics") in have)) continue
		if (!n++) {
			print "| workload | threads | unit | with ÷ without metrics (edo ÷ edo-nometrics) | optional on ÷ off (edo-metrics ÷ edo) |"
			print "|---|---:|---|---:|---:|"
		}
		split(row, p, SUBSEP)
		print "| " p[1] " | " p[2] " | " unit[row] " | " paired(row, "edo", "edo-nometrics") \
			" | " paired(row, "edo-metrics", "edo") " |"
	}
}
