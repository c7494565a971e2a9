# The servers' paired ratios of the report (bench/README.md, "Servers,
# paired"): for every row of a server workload (requests/s, p99 latency,
# requests per server CPU second), Edo's result ÷ each peer's, as the median
# of the ratios of the runs made in the same round. Run after bench/paired.awk
# (awk -v servers="tcp_echo http_hello" -v peers="tokio epoll" -f
# bench/paired.awk -f bench/servers.awk RAW); prints a markdown table, or
# nothing when no server row has Edo and a peer. Portable awk.

BEGIN {
	n = split(servers, S, " ")
	for (i = 1; i <= n; i++) server[S[i]] = 1
}

function is_server(w) { return w in server }

END {
	np = split(peers, P, " ")
	# Only the peers with a result in some server row get a column.
	nc = 0
	for (j = 1; j <= np; j++)
		for (i = 1; i <= nrows; i++)
			if (is_server(wl[rows[i]]) && ((rows[i], P[j]) in have)) {
				C[++nc] = P[j]
				break
			}
	if (nc == 0) exit
	head = "| row | threads | unit |"
	rule = "|---|---:|---|"
	for (j = 1; j <= nc; j++) {
		head = head " edo ÷ " C[j] " |"
		rule = rule "---:|"
	}
	n = 0
	for (i = 1; i <= nrows; i++) {
		row = rows[i]
		split(row, p, SUBSEP)
		# Requests/s, p99 and requests per CPU second; not _cpu or _spread.
		if (!is_server(wl[row]) || !((row, "edo") in have) || p[1] !~ /_c[0-9]+(_p99|_per_cpu)?$/) continue
		if (!n++) {
			print head
			print rule
		}
		line = "| " p[1] " | " p[2] " | " unit[row] " |"
		for (j = 1; j <= nc; j++) line = line " " paired(row, "edo", C[j]) " |"
		print line
	}
}
