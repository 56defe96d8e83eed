// etcd built from the Go module proxy at the version kube-apiserver itself
// depends on, so the test cluster never depends on a distro etcd package.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
