# The chart of docs/PERFORMANCE.md: calls per second against client
# connections for each method and the Ping floor. scripts/bench passes
# `datafile` (from bench/report.py) and `outfile`.
set terminal pngcairo size 900,560 font "sans,11"
set output outfile
set title "apikeyd over a private dbus-daemon (2 cores): median calls/s"
set xlabel "client connections"
set ylabel "calls per second"
set logscale x 2
set logscale y 10
set xtics ("1" 1, "4" 4, "16" 16)
set xrange [0.8:20]
set grid
set key outside right center
plot datafile using 1:5 with linespoints lw 2 dt 2 pt 7 lc rgb "#555555" title "Ping floor", \
     '' using 1:2 with linespoints lw 2 pt 5 lc rgb "#1b75bc" title "VerifyKey", \
     '' using 1:3 with linespoints lw 2 pt 9 lc rgb "#2ca02c" title "GetSecret", \
     '' using 1:4 with linespoints lw 2 pt 13 lc rgb "#d62728" title "CreateKey"
