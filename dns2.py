import socket, time
for n in ['foo', 'foo.test', 'nx.test', 'zzz']:
    t = time.time()
    try: r = sorted(set(x[4][0] for x in socket.getaddrinfo(n, 80, socket.AF_INET)))
    except socket.gaierror as e: r = ('ERR', e.errno)
    print(n, r, round(time.time() - t))
