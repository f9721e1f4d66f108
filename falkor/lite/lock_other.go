//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package lite

import "context"

// lockFile is a no-op here: concurrent provisioning relies on the atomic rename alone.
func lockFile(ctx context.Context, path string) (unlock func(), locked bool, err error) {
	return func() {}, false, ctx.Err()
}
