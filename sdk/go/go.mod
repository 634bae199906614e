module github.com/flk-pcs/flk/sdk/go

go 1.22
