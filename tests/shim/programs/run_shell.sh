#!/bin/bash
# Shell pipelines, sort on stdin, getent: output identical with and
# without grove-run (sh and every program it starts inherit the preload).
set -u
. "$(dirname "$0")/common.sh"

need getent libc-bin
check_preload

script='
printf "pear\napple\nfig\n" | sort
seq 1 50000 | sort -rn | head -3
yes grove | head -c 3000000 | wc -c
sleep 0.2 && echo slept
(sleep 0.1; echo late) & echo early; wait
echo "exit $(sh -c "exit 5"; echo $?)"
getent hosts localhost | sort
cat /etc/passwd | sort | sha256sum
'
/bin/sh -c "$script" >"$WORK/shell.plain" 2>&1
"$GROVE_RUN" -- /bin/sh -c "$script" >"$WORK/shell.grove" 2>&1
compare shell
exit 0
