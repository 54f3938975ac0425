package envoyfake

import (
	"io"
	"net"
	"sync"
)

// blackHole accepts connections and never answers: it reads and discards
// until the peer or close hangs up. Clients without timeouts hang on it.
type blackHole struct {
	ln     net.Listener
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

func newBlackHole(ln net.Listener) *blackHole {
	return &blackHole{ln: ln, conns: map[net.Conn]struct{}{}}
}

func (b *blackHole) serve() {
	for {
		c, err := b.ln.Accept()
		if err != nil {
			b.wg.Wait()
			return
		}
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			_ = c.Close()
			continue
		}
		b.conns[c] = struct{}{}
		b.mu.Unlock()
		b.wg.Go(func() {
			_, _ = io.Copy(io.Discard, c)
			_ = c.Close()
			b.mu.Lock()
			delete(b.conns, c)
			b.mu.Unlock()
		})
	}
}

func (b *blackHole) close() {
	_ = b.ln.Close()
	b.mu.Lock()
	b.closed = true
	for c := range b.conns {
		_ = c.Close()
	}
	b.mu.Unlock()
}
