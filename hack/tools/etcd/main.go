// Command etcd is etcd's own main, built from go.etcd.io/etcd/server/v3 so the
// end-to-end tests can run etcd where its release download is unreachable.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
