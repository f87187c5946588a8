;; Guile threads under its collector (Boehm GC), which stops every thread
;; for a collection by sending each a signal whose handler waits in
;; sigsuspend until a second signal resumes it. Workers allocate enough to
;; collect many times while the others run, wait on a mutex and condition
;; variable, and par-map spreads work over a pool. The output is the same
;; on OS threads and on green threads.
(use-modules (ice-9 threads) (srfi srfi-1))

(define (churn k n)
  ;; n lists of fresh vectors, only the last kept: garbage for the collector.
  (let loop ((i 0) (kept '()))
    (if (< i n)
        (loop (+ i 1) (list (make-vector 64 (+ k i))))
        (vector-ref (car kept) 0))))

(define workers
  (map (lambda (k) (call-with-new-thread (lambda () (churn k 200000))))
       (iota 4)))
(display (map join-thread workers)) (newline)

(define m (make-mutex))
(define c (make-condition-variable))
(define produced '())
(define consumed 0)
(define consumer
  (call-with-new-thread
   (lambda ()
     (let loop ()
       (lock-mutex m)
       (let wait ()
         (when (null? produced)
           (wait-condition-variable c m)
           (wait)))
       (let ((item (car produced)))
         (set! produced (cdr produced))
         (unlock-mutex m)
         (unless (eq? item 'stop)
           (set! consumed (+ consumed item))
           (churn item 100)
           (loop)))))))
(for-each (lambda (i)
            (lock-mutex m)
            (set! produced (append produced (list i)))
            (signal-condition-variable c)
            (unlock-mutex m))
          (iota 1000))
(lock-mutex m)
(set! produced (append produced (list 'stop)))
(signal-condition-variable c)
(unlock-mutex m)
(join-thread consumer)
(display consumed) (newline)

(display (par-map (lambda (k) (length (map (lambda (i) (make-string 32 #\g)) (iota (* 1000 k)))))
                  (iota 8 1)))
(newline)
(gc)
(display "done") (newline)
