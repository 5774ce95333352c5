module github.com/switchyard-io/switchyard/sdks/go

go 1.26
