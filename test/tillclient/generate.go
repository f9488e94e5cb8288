// Package tillclient is a till's Go client of posd's API, generated from
// docs/openapi.yaml with oapi-codegen, as an integrator would make it. Its
// tests run a till's day through it against a real posd: the document is
// one a generated client can trust.
package tillclient

//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen@v2.8.2 -generate types,client -package tillclient -o client.gen.go ../../docs/openapi.yaml
