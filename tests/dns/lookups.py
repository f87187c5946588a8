# Name lookups as an unmodified program makes them (getaddrinfo,
# gethostbyname_ex -> gethostbyname_r, gethostbyaddr -> gethostbyaddr_r,
# getnameinfo); prints every answer or error, for run_programs.sh to compare.
import socket
import sys

names = sys.argv[1:]
for name in names:
    for fam in (socket.AF_UNSPEC, socket.AF_INET, socket.AF_INET6):
        for flags in (0, socket.AI_CANONNAME, socket.AI_V4MAPPED | socket.AI_ALL):
            try:
                r = socket.getaddrinfo(name, 80, fam, 0, 0, flags)
                print("gai", name, fam, flags, r)
            except socket.gaierror as e:
                print("gai", name, fam, flags, "error", e.errno)
    try:
        print("ghbn", name, socket.gethostbyname_ex(name))
    except OSError as e:
        print("ghbn", name, "error", type(e).__name__, e.errno)
for ip in ("127.0.0.1", "192.0.2.1", "192.0.2.99", "::1"):
    try:
        print("ghba", ip, socket.gethostbyaddr(ip))
    except OSError as e:
        print("ghba", ip, "error", type(e).__name__, e.errno)
    for flags in (0, socket.NI_NAMEREQD, socket.NI_NUMERICHOST):
        try:
            print("gni", ip, flags, socket.getnameinfo((ip, 80), flags))
        except OSError as e:
            print("gni", ip, flags, "error", e.errno)
