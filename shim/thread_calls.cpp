// placeholder: green threads
