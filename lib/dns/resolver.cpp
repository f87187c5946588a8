// placeholder: the resolver (lib/dns) is written here
