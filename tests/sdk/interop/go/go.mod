module github.com/flk-pcs/flk/tests/sdk/interop/go

go 1.22

require github.com/flk-pcs/flk/sdk/go v0.0.0

replace github.com/flk-pcs/flk/sdk/go => ../../../../sdk/go
