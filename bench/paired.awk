# Paired runs, for bench/ab.awk and bench/servers.awk (awk -f bench/paired.awk
# -f bench/ab.awk RAW): reads the runner's raw result lines
# (build/bench-results/raw.txt, as report.awk does) into val[row, impl, run]
# and gives paired(): the median of the ratios of paired runs. Portable awk.
#
# Runs are paired: run r of one column with run r of another, which the
# runner made in the same round (interleaved, one right after the other), so
# that a change of load on the machine hits both alike. A ratio is given
# with its spread, the middle half of the ratios (25th to 75th percentile),
# and the number of pairs (a single pair: its ratio alone, as the one
# instruction count of the current-thread runtime).

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
		wl[row] = F["wl"]
	}
	val[row, F["impl"], F["rep"] + 0] = F["value"]
	if (F["rep"] + 0 > maxrep) maxrep = F["rep"] + 0
	have[row, F["impl"]] = 1
}
