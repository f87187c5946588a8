/* An empty library to preload: the yardstick for what preloading any
 * library at all adds to a program's start-up (check_preload.sh's fault
 * count, tests/bench/bench_startup). */
int grove_empty_preload_marker;
