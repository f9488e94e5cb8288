// Package docs holds what posd serves of its documents: the till API's
// OpenAPI document (GET /openapi.yaml), the contract its tests hold every
// request and answer to.
package docs

import _ "embed"

// OpenAPI is docs/openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte
