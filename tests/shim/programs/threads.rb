# Ruby threads (the VM keeps each thread's execution context in thread-local
# variables): a queue between workers, a mutex and condition variable,
# sleeps, thread-local values, an exception in a thread, a socket pair. The
# output is the same on OS threads and on green threads.
require 'socket'
Thread.report_on_exception = false

queue = Queue.new
results = Queue.new
workers = 4.times.map do |i|
  Thread.new do
    Thread.current[:name] = "worker #{i}"
    while (job = queue.pop) != :stop
      sleep 0.001 * (job % 3)
      results << [job, job * job, Thread.current[:name]]
    end
  end
end
40.times { |j| queue << j }
4.times { queue << :stop }
workers.each(&:join)
squares = []
owners = {}
squares << results.pop.tap { |r| owners[r[2]] = true } until results.empty?
puts "squares: #{squares.map { |r| r[1] }.sort.sum} from #{squares.size} jobs, #{owners.size <= 4} names"

mutex = Mutex.new
cond = ConditionVariable.new
ready = 0
waiters = 3.times.map do
  Thread.new do
    mutex.synchronize do
      ready += 1
      cond.wait(mutex) while ready < 4
    end
    :woken
  end
end
sleep 0.05
mutex.synchronize { ready += 1; cond.broadcast }
puts "condvar: #{waiters.map(&:value).inspect}"

failing = Thread.new { raise ArgumentError, "from a thread" }
begin
  failing.join
rescue ArgumentError => e
  puts "exception: #{e.message}"
end

a, b = UNIXSocket.pair
reader = Thread.new { a.read(11) }
writer = Thread.new { sleep 0.01; b.write("hello ruby!") }
writer.join
puts "socket: #{reader.value}"

counts = 8.times.map { |i| Thread.new { Thread.current[:n] = i; sleep 0.001; Thread.current[:n] } }.map(&:value)
puts "locals: #{counts.inspect}"
puts "done"
