// placeholder: interposed name lookups
