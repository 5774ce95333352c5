module github.com/switchyard-io/switchyard/sdks/go/openfeature

go 1.26.0

require (
	github.com/open-feature/go-sdk v1.20.0
	github.com/switchyard-io/switchyard/sdks/go v0.0.0
)

require go.uber.org/mock v0.6.0 // indirect

replace github.com/switchyard-io/switchyard/sdks/go => ../
