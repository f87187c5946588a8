/* OpenMP (libgomp) under grove-run: its barriers spin and wait with raw
 * futex system calls no interposer sees, so green threads could never
 * finish a parallel region. The shim keeps OS threads for a program that
 * loads libgomp at start (run_threads.sh is told so: the green run must
 * report more than one thread); the results are the native ones. */
#include "threads_test.h"

#include <omp.h>

int main(void) {
    long sum = 0;
#pragma omp parallel for reduction(+ : sum)
    for (int i = 0; i < 100000; ++i) {
        sum += i;
    }
    printf("parallel for reduction: %ld\n", sum);

    int in_critical = 0;
    int team = 0;
#pragma omp parallel
    {
#pragma omp critical
        ++in_critical;
#pragma omp barrier
#pragma omp single
        team = omp_get_num_threads();
    }
    printf("critical sections: one per thread: %s\n", in_critical == team ? "yes" : "no");

    long fib[30] = {0, 1};
#pragma omp parallel
#pragma omp single
    for (int i = 2; i < 30; ++i) {
#pragma omp task depend(in : fib[i - 1], fib[i - 2]) depend(out : fib[i])
        fib[i] = fib[i - 1] + fib[i - 2];
    }
    printf("tasks with dependences: fib(29) = %ld\n", fib[29]);

    int rounds = 0;
    for (int r = 0; r < 200; ++r) {
#pragma omp parallel
        {
#pragma omp barrier
        }
        ++rounds;
    }
    printf("parallel regions entered and left: %d\n", rounds);
    printf("end\n");
    fflush(stdout);
    tt_report_threads();
    return 0;
}
