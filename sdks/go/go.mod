module tollgate.dev/sdks/go

go 1.19
