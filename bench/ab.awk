# The metrics A/B of the report (bench/README.md, edo-nometrics): for every
# row where both edo and edo-nometrics have results, what the always-on
# metrics cost, and what the optional collection (edo-metrics) adds on top.
# Run after bench/paired.awk (awk -f bench/paired.awk -f bench/ab.awk RAW),
# which reads the runner's raw lines and pairs the runs; prints a markdown
# table, or nothing when no row has both. Portable awk.

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
