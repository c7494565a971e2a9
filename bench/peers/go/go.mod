module edo.bench/peers

go 1.19
