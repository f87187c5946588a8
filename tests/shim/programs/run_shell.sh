#!/bin/bash
# Shell pipelines, sort on stdin, getent: output identical with and
# without grove-run (sh and every program it starts inherit the preload).
# Then bash's redirections onto the low numbers it takes for itself (3 up):
# the shim's own fds must not be among them.
set -u
. "$(dirname "$0")/common.sh"

need getent libc-bin
need bash bash
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

bash_script='
cd "$1" || exit 1
seq 3 >f
exec 3<f; cat <&3; exec 3<&-
exec 4>g; echo four >&4; exec 4>&-; cat g
exec 5<f 6<f 7<f 8<f 9<f; read -r x <&9; echo "read $x"; exec 5<&- 6<&- 7<&- 8<&- 9<&-
exec 3<f; sleep 0.1 && echo slept; { sleep 0.1; echo piped; } | cat; cat <&3
'
mkdir "$WORK/plain" "$WORK/grove"
/bin/bash -c "$bash_script" bash "$WORK/plain" >"$WORK/bash.plain" 2>&1
"$GROVE_RUN" -- /bin/bash -c "$bash_script" bash "$WORK/grove" >"$WORK/bash.grove" 2>&1
compare bash
exit 0
