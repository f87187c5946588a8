# multiprocessing.Pool: worker processes fed through pipes by the pool's
# handler threads, which share SemLocks (named POSIX semaphores) with the
# workers and with each other. Leaving the with block terminates the pool,
# whose threads then wait on those semaphores for one another.
import multiprocessing


def main():
    with multiprocessing.Pool(2) as p:
        print(sum(p.map(abs, range(-50, 50))))
    with multiprocessing.Pool(2) as p:
        print(sorted(p.imap_unordered(abs, range(-5, 5))))
    print("done")


if __name__ == "__main__":
    main()
