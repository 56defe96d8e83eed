//go:build tools

// Package tools pins kwok, the simulated nodes and kubelet API of the test
// cluster. It is its own module because kwok follows a newer Kubernetes
// library line than the control plane in ../go.mod.
package tools

import (
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
