// Package egresstest serves host names from memory, so tests can prove the
// egress guard checks what a name resolves to (including a name whose answer
// changes, as in DNS rebinding) without a DNS server or a real network.
package egresstest

import (
	"context"
	"encoding/binary"
	"io"
	"math"
	"net"
	"net/netip"
	"strings"
	"sync"

	"golang.org/x/net/dns/dnsmessage"
)

// DNS is an in-memory zone. Names it does not hold do not exist.
type DNS struct {
	mu    sync.Mutex
	names map[string][]netip.Addr
}

// NewDNS returns an empty zone.
func NewDNS() *DNS { return &DNS{names: map[string][]netip.Addr{}} }

// Set makes name resolve to addrs from now on; no addrs removes it.
func (d *DNS) Set(name string, addrs ...netip.Addr) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.names[canonical(name)] = addrs
}

func canonical(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) + "." }

// Resolver returns a pure-Go resolver whose every query this zone answers,
// over an in-memory connection. Names in /etc/hosts (localhost) still
// resolve from there, as with the system resolver.
func (d *DNS) Resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		client, server := net.Pipe()
		go d.serve(server)
		return client, nil
	}}
}

// serve answers length-prefixed queries (DNS over a stream, as the Go
// resolver speaks on a connection that is not a net.PacketConn).
func (d *DNS) serve(conn net.Conn) {
	defer conn.Close() //nolint:errcheck // in-memory pipe
	for {
		var size [2]byte
		if _, err := io.ReadFull(conn, size[:]); err != nil {
			return
		}
		query := make([]byte, binary.BigEndian.Uint16(size[:]))
		if _, err := io.ReadFull(conn, query); err != nil {
			return
		}
		answer, err := d.answer(query)
		if err != nil {
			return
		}
		n := len(answer)
		if n > math.MaxUint16 { // more than a TCP DNS message can frame
			return
		}
		out := binary.BigEndian.AppendUint16(nil, uint16(n))
		if _, err := conn.Write(append(out, answer...)); err != nil {
			return
		}
	}
}

func (d *DNS) answer(query []byte) ([]byte, error) {
	var msg dnsmessage.Message
	if err := msg.Unpack(query); err != nil || len(msg.Questions) != 1 {
		return nil, io.ErrUnexpectedEOF
	}
	q := msg.Questions[0]
	d.mu.Lock()
	addrs, ok := d.names[strings.ToLower(q.Name.String())]
	d.mu.Unlock()
	resp := dnsmessage.Message{
		Header: dnsmessage.Header{ID: msg.ID, Response: true, Authoritative: true, RecursionDesired: msg.RecursionDesired,
			RecursionAvailable: true},
		Questions: msg.Questions,
	}
	if !ok {
		resp.RCode = dnsmessage.RCodeNameError
	}
	hdr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 0}
	for _, a := range addrs {
		switch {
		case q.Type == dnsmessage.TypeA && a.Is4():
			hdr.Type = dnsmessage.TypeA
			resp.Answers = append(resp.Answers, dnsmessage.Resource{Header: hdr, Body: &dnsmessage.AResource{A: a.As4()}})
		case q.Type == dnsmessage.TypeAAAA && !a.Is4():
			hdr.Type = dnsmessage.TypeAAAA
			resp.Answers = append(resp.Answers, dnsmessage.Resource{Header: hdr, Body: &dnsmessage.AAAAResource{AAAA: a.As16()}})
		}
	}
	return resp.Pack()
}
