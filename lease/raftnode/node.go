package raftnode

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uniter-dev/uniter/lease"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/rs/zerolog"
	"go.etcd.io/bbolt"

	"github.com/uniter-dev/uniter/internal/clock"
)

// Defaults of Config. Raft's own defaults (1 s heartbeat and election
// timeouts, 500 ms leader lease) are tuned for WANs and slow disks; a
// controller is one to five nodes on a LAN, where these detect a dead
// leader in about a second (an election takes ElectionTimeout to
// 2*ElectionTimeout plus a round trip) while tolerating a GC pause or a
// busy disk of a few hundred milliseconds.
const (
	DefaultTick               = 250 * time.Millisecond
	DefaultApplyTimeout       = 5 * time.Second
	DefaultHeartbeatTimeout   = 500 * time.Millisecond
	DefaultElectionTimeout    = 500 * time.Millisecond
	DefaultLeaderLeaseTimeout = 250 * time.Millisecond
	// DefaultSnapshotThreshold: the time advancer alone writes one entry
	// per tick (86,400 a day), so snapshot after this many new entries...
	DefaultSnapshotThreshold = 4096
	// DefaultSnapshotInterval ...checked this often (raft adds jitter).
	DefaultSnapshotInterval = 30 * time.Second
	// DefaultTrailingLogs entries are kept after a snapshot, so that a
	// follower that was briefly away catches up from the log instead of
	// being sent a whole snapshot.
	DefaultTrailingLogs = 2048
	// snapshotRetain is how many snapshots the file store keeps.
	snapshotRetain = 2
	// closeTimeout bounds how long Close waits for raft to shut down.
	closeTimeout = 10 * time.Second
)

// Config configures a controller node. Zero durations take the
// defaults above.
type Config struct {
	// ID is the raft server ID, e.g. "node-1". Empty: the ID stored in
	// DataDir/node.json by an earlier start (an error if there is none).
	// A non-empty ID that differs from the stored one is an error: the
	// data directory belongs to another node.
	ID string
	// DataDir holds raft.db (BoltDB log and stable store), snapshots/ and
	// node.json. It is created (0700) if missing.
	DataDir string
	// RaftAddr is the TCP address raft binds and advertises, "host:port".
	// Port 0 picks a free port the first time and reuses the one stored in
	// node.json on later starts (RaftAddr() tells the real one); empty
	// means the stored one. The host must not be unspecified (0.0.0.0),
	// since peers dial what is advertised.
	RaftAddr string
	// TLS is the mutual TLS of raft's transport (required): the node's
	// certificate (GetCertificate and GetClientCertificate, so that it can
	// be replaced while the node runs), the cluster CA as ClientCAs and
	// RootCAs, and ClientAuth tls.RequireAndVerifyClientCert. Peers are
	// dialled with ServerName set to the host of their raft address, which
	// their certificate must name.
	TLS *tls.Config
	// APIAddr is this node's HTTP address, recorded in the FSM (see
	// RecordMember) when this node becomes the raft leader.
	APIAddr string
	// Bootstrap makes a single-voter cluster of this node if DataDir holds
	// no raft state yet. Without it a new node waits to be added (AddVoter
	// on the leader) and an existing one rejoins its cluster.
	Bootstrap bool
	// ProtoMin, ProtoMax is the protocol range this node speaks (default 1
	// and ProtoMin), within MinProtocol..MaxProtocol. The node refuses to
	// open a data directory whose cluster runs a version outside it, and
	// fails (see Failed) if its cluster moves past ProtoMax.
	ProtoMin, ProtoMax uint64
	// Clock drives the time advancer and the freshness check of claims
	// and extends (Node.Apply). Raft's timers and the timeouts of raft
	// calls are real time (raft's own clock), whatever Clock is.
	Clock clock.Clock
	// Logger receives the node's logs and raft's (at RaftLogLevel).
	Logger zerolog.Logger
	// RaftLogLevel is the least level of raft's own logs passed to Logger:
	// "trace", "debug", "info", "warn" (default) or "error".
	RaftLogLevel string
	// Tick is the time advancer's period (default 250 ms).
	Tick time.Duration
	// AdvanceTimeout bounds one advance of the global time (default
	// 2 × Tick). An advance slower than this fails and the advancer
	// re-anchors, which only pauses the global time.
	AdvanceTimeout time.Duration
	// ApplyTimeout bounds every raft call: Apply, Barrier, membership
	// changes, leadership transfer (default 5 s).
	ApplyTimeout time.Duration
	// HeartbeatTimeout, ElectionTimeout and LeaderLeaseTimeout are raft's
	// (defaults 500 ms, 500 ms, 250 ms; see the constants).
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	// SnapshotThreshold, SnapshotInterval and TrailingLogs are raft's
	// (defaults 4096 entries, 30 s, 2048 entries).
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64
	// NoBatching turns batching off (see batch.go): every command is
	// proposed in a log entry of its own and applied alone, as before
	// protocol 6. For comparisons; the default batches.
	NoBatching bool
	// MaxBatch is the most commands one batched entry carries (default
	// DefaultMaxBatch, at most lease.MaxBatch).
	MaxBatch int
	// NoLeaderRenew turns off renewals answered by the raft leader (see
	// renew.go): every extend, and every claim by the lease's holder, is
	// a log entry, as before protocol 7. For comparisons; the default
	// answers them from memory.
	NoLeaderRenew bool
	// BatchInflight is how many batched entries may be in flight at once
	// before the queue waits for one to return (default
	// DefaultBatchInflight: group commit).
	BatchInflight int
}

// slack is the Slack the time advancer puts in every AdvanceTime: a lease
// expires only once the global time is past its expiry by this much. The
// gate of lease/doc.go needs the global time a claim or extend is applied
// at to have been computed at most a slack before its client started it;
// Node.Apply holds the command until that is so (freshLimit). On a leader
// that is not paused it always is: the newest applied advance is at most
// a tick plus the apply latency of the next one old, and an advance slower
// than AdvanceTimeout fails (and the advancer re-anchors). It is kept
// short because a crashed leader's successor waits for it: with the
// defaults, 750 ms.
func (c Config) slack() time.Duration { return c.Tick + c.AdvanceTimeout }

// freshLimit is how old, on the leader's clock, the stamp of the global
// time may be when a claim or extend is proposed (the gate of
// lease/doc.go): a tick less than the slack, the margin of assumption A2
// for a clock that runs slow. With the defaults, 500 ms; a leader that
// answers within it never holds a command.
func (c Config) freshLimit() time.Duration { return c.slack() - c.Tick }

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.Tick, DefaultTick)
	def(&c.ApplyTimeout, DefaultApplyTimeout)
	def(&c.AdvanceTimeout, 2*c.Tick)
	def(&c.HeartbeatTimeout, DefaultHeartbeatTimeout)
	def(&c.ElectionTimeout, DefaultElectionTimeout)
	def(&c.LeaderLeaseTimeout, DefaultLeaderLeaseTimeout)
	def(&c.SnapshotInterval, DefaultSnapshotInterval)
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = DefaultSnapshotThreshold
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = DefaultTrailingLogs
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.BatchInflight == 0 {
		c.BatchInflight = DefaultBatchInflight
	}
	if c.ProtoMin == 0 {
		c.ProtoMin = 1
	}
	if c.ProtoMax == 0 {
		c.ProtoMax = c.ProtoMin
	}
}

func (c *Config) validate() error {
	switch {
	case c.Clock == nil:
		return errors.New("no clock")
	case c.DataDir == "":
		return errors.New("no data directory")
	case c.TLS == nil:
		return errors.New("no TLS configuration for raft")
	case c.ProtoMin < lease.MinProtocol || c.ProtoMin > c.ProtoMax || c.ProtoMax > lease.MaxProtocol:
		return fmt.Errorf("bad protocol range %d..%d (this build implements %d..%d)",
			c.ProtoMin, c.ProtoMax, lease.MinProtocol, lease.MaxProtocol)
	case c.Tick < 0 || c.ApplyTimeout < 0 || c.AdvanceTimeout < 0:
		return errors.New("negative tick or apply timeout")
	case c.BatchInflight < 0:
		return errors.New("negative batch in flight")
	case c.MaxBatch < 1 || c.MaxBatch > lease.MaxBatch:
		return fmt.Errorf("bad max batch %d (want 1 to %d)", c.MaxBatch, lease.MaxBatch)
	}
	return nil
}

// nodeFile is DataDir/node.json: who this data directory belongs to, and
// the newest effective cluster version the node has seen (so that an
// older binary refuses the directory before it opens raft).
type nodeFile struct {
	ID               string `json:"id"`
	RaftAddr         string `json:"raft_addr"`
	APIAddr          string `json:"api_addr"`
	EffectiveVersion uint64 `json:"effective_version,omitempty"`
}

// Node is one controller node: a raft server over an FSM, with the
// leadership watcher that runs the leader loop (barrier, member record,
// time advancer) while this node is the raft leader. All methods are safe
// for concurrent use; every raft call is bounded by ApplyTimeout and by
// its ctx, so no caller can hang on raft.
type Node struct {
	cfg   Config
	log   zerolog.Logger
	fsm   *lease.FSM
	raft  *raft.Raft
	trans *raft.NetworkTransport
	store *raftboltdb.BoltStore
	disk  *diskGuard // raft's writes to DataDir, for a full disk

	stop      chan struct{} // closed by Close: the watchers stop
	done      chan struct{} // closed when the leadership watcher has stopped
	closeOnce sync.Once
	closeErr  error

	// seenVersion is the effective version last written to node.json;
	// only the version watcher changes it once the node runs.
	seenVersion uint64
	versionDone chan struct{} // closed when the version watcher has stopped
	failed      chan struct{} // closed when the node cannot go on (failErr)
	failErr     error
	// kick wakes the leader's version raiser after a membership change,
	// which the FSM does not see (one slot, non-blocking sends).
	kick chan struct{}
	// leaderReady is true while this node leads and its leader loop's
	// barrier has completed: its FSM holds every committed entry.
	leaderReady atomic.Bool
	// fresh is the stamp of the newest advance this node's advancer saw
	// applied, which Apply checks before a claim or extend.
	fresh freshness
	// batch groups concurrent commands into log entries (nil with
	// Config.NoBatching).
	batch *batcher
	// renew holds the renewals this leader answered from memory until its
	// advancer writes them back; verify groups the VerifyLeader rounds
	// they wait for; leaderRenewals counts them (renew.go).
	renew          renewals
	verify         verifier
	leaderRenewals atomic.Uint64
}

// Open opens (creating if needed) the node's data directory, starts
// raft over BoltDB, a file snapshot store and a mutual-TLS transport
// (tls.go), bootstraps
// a single-voter cluster if asked and the directory is new, and starts
// watching raft leadership. Close the node to release everything.
func Open(ctx context.Context, cfg Config) (*Node, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("cannot open controller node: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("cannot open controller node: %w", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot open controller node: %w", err)
	}
	seen, err := resolveIdentity(&cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot open controller node: %w", err)
	}
	if err := cfg.checkRange(seen); err != nil {
		return nil, fmt.Errorf("cannot open controller node %s: %w", cfg.ID, err)
	}
	n := &Node{
		cfg:         cfg,
		log:         cfg.Logger.With().Str("component", "lease-node").Str("node_id", cfg.ID).Logger(),
		fsm:         lease.NewFSM(),
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
		seenVersion: seen,
		versionDone: make(chan struct{}),
		failed:      make(chan struct{}),
		kick:        make(chan struct{}, 1),
	}
	if err := n.start(); err != nil {
		n.release()
		return nil, fmt.Errorf("cannot open controller node %s: %w", cfg.ID, err)
	}
	go n.watchLeadership()
	go n.watchVersion()
	if !cfg.NoBatching {
		n.batch = newBatcher(n)
		go n.batch.run()
	}
	return n, nil
}

// resolveIdentity reconciles cfg with DataDir/node.json: the ID and raft
// address of an earlier start are reused (see Config). It returns the
// effective version stored there (0 if none).
func resolveIdentity(cfg *Config) (uint64, error) {
	path := filepath.Join(cfg.DataDir, "node.json")
	var stored nodeFile
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return 0, fmt.Errorf("cannot read node identity: %w", err)
	default:
		if err := json.Unmarshal(data, &stored); err != nil {
			return 0, fmt.Errorf("cannot read node identity %s: %w", path, err)
		}
	}
	switch {
	case cfg.ID == "" && stored.ID == "":
		return 0, errors.New("no node ID given and none stored in the data directory")
	case cfg.ID == "":
		cfg.ID = stored.ID
	case stored.ID != "" && stored.ID != cfg.ID:
		return 0, fmt.Errorf("data directory %s belongs to node %q, not %q", cfg.DataDir, stored.ID, cfg.ID)
	}
	if cfg.RaftAddr == "" || (anyPort(cfg.RaftAddr) && stored.RaftAddr != "") {
		cfg.RaftAddr = stored.RaftAddr
	}
	if cfg.RaftAddr == "" {
		return 0, errors.New("no raft address given and none stored in the data directory")
	}
	return stored.EffectiveVersion, nil
}

// writeIdentity writes node.json with n.seenVersion.
func (n *Node) writeIdentity() error {
	f := nodeFile{ID: n.cfg.ID, RaftAddr: n.RaftAddr(), APIAddr: n.cfg.APIAddr, EffectiveVersion: n.seenVersion}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("cannot write node identity: %w", err)
	}
	path := filepath.Join(n.cfg.DataDir, "node.json")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("cannot write node identity: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("cannot write node identity: %w", err)
	}
	return nil
}

// start builds the stores, transport and raft; on error the caller
// releases whatever was built.
func (n *Node) start() error {
	hlog, err := newRaftLogger(n.cfg.Logger.With().Str("component", "raft").Str("node_id", n.cfg.ID).Logger(), n.cfg.RaftLogLevel)
	if err != nil {
		return err
	}
	n.store, err = openLogStore(n.cfg.DataDir)
	if err != nil {
		return err
	}
	n.disk = newDiskGuard(n.cfg.DataDir, n.cfg.Clock, n.log, n.stop)
	logs, err := raft.NewLogCache(512, guardedLogStore{LogStore: n.store, g: n.disk})
	if err != nil {
		return fmt.Errorf("cannot open raft log cache: %w", err)
	}
	files, err := raft.NewFileSnapshotStoreWithLogger(n.cfg.DataDir, snapshotRetain, hlog)
	if err != nil {
		return fmt.Errorf("cannot open raft snapshot store: %w", err)
	}
	snaps := guardedSnapshots{SnapshotStore: files, g: n.disk}
	stream, err := listenTLS(n.cfg.RaftAddr, n.cfg.TLS, n.log)
	if err != nil {
		return fmt.Errorf("cannot listen for raft on %s: %w", n.cfg.RaftAddr, err)
	}
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: stream, MaxPool: 3, Timeout: n.cfg.ApplyTimeout, Logger: hlog,
	})
	existing, err := raft.HasExistingState(logs, n.store, snaps)
	if err != nil {
		return fmt.Errorf("cannot inspect raft state: %w", err)
	}
	n.raft, err = raft.NewRaft(n.raftConfig(hlog), n.raftFSM(), logs, guardedStableStore{StableStore: n.store, g: n.disk}, snaps, n.trans)
	if err != nil {
		return fmt.Errorf("cannot start raft: %w", err)
	}
	// NewRaft restored the newest snapshot: its cluster may run a version
	// this node cannot speak even if node.json did not know it yet.
	if n.fsm.Index() > 0 {
		v := n.fsm.EffectiveVersion()
		if err := n.cfg.checkRange(v); err != nil {
			return err
		}
		n.seenVersion = max(n.seenVersion, v)
	}
	if n.cfg.Bootstrap && !existing && n.cfg.ProtoMin > lease.MinProtocol {
		return fmt.Errorf("cannot bootstrap a cluster: a new cluster runs protocol %d and this node speaks %d..%d",
			lease.MinProtocol, n.cfg.ProtoMin, n.cfg.ProtoMax)
	}
	if err := n.writeIdentity(); err != nil {
		return err
	}
	if n.cfg.Bootstrap && !existing {
		n.log.Info().Str("raft_addr", n.RaftAddr()).Msg("bootstrapping a new cluster")
		f := n.raft.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{
			Suffrage: raft.Voter, ID: raft.ServerID(n.cfg.ID), Address: n.trans.LocalAddr(),
		}}})
		if err := f.Error(); err != nil {
			return fmt.Errorf("cannot bootstrap cluster: %w", err)
		}
	}
	return nil
}

// openLogStore opens the raft log and stable store: BoltDB in
// DataDir/raft.db (docs/controller.md, "Log store", says why).
func openLogStore(dir string) (*raftboltdb.BoltStore, error) {
	path := filepath.Join(dir, "raft.db")
	if err := checkLogStore(path); err != nil {
		return nil, err
	}
	store, err := raftboltdb.New(raftboltdb.Options{
		Path: path,
		// Fail instead of waiting forever if another process has it open.
		BoltOptions: &bbolt.Options{Timeout: time.Second},
	})
	if err != nil {
		return nil, fmt.Errorf("cannot open raft log store: %w", err)
	}
	return store, nil
}

func (n *Node) raftConfig(hlog hclog.Logger) *raft.Config {
	c := raft.DefaultConfig()
	c.LocalID = raft.ServerID(n.cfg.ID)
	c.Logger = hlog
	c.HeartbeatTimeout = n.cfg.HeartbeatTimeout
	c.ElectionTimeout = n.cfg.ElectionTimeout
	c.LeaderLeaseTimeout = n.cfg.LeaderLeaseTimeout
	c.SnapshotThreshold = n.cfg.SnapshotThreshold
	c.SnapshotInterval = n.cfg.SnapshotInterval
	c.TrailingLogs = n.cfg.TrailingLogs
	// Leadership is observed through LeaderCh (latest value, never blocks
	// raft); NotifyCh stays nil (see the Nomad leadership-flapping fix).
	c.NotifyCh = nil
	// BatchApplyCh stays off: with it raft buffers proposals in a channel
	// that nothing answers at shutdown, so a proposal made as the node
	// closes waits forever and its waiter leaks (hashicorp/raft issue
	// 498; goleak caught one in the cli tests). The batcher (batch.go)
	// groups concurrent writes into one entry already, and raft's leader
	// loop still appends whatever proposals wait at once together.
	c.BatchApplyCh = false
	return c
}

// release closes what start built, in reverse order.
func (n *Node) release() error {
	var errs []error
	if n.raft != nil {
		f := n.raft.Shutdown()
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		err := waitFuture(ctx, f)
		cancel()
		if err != nil && !errors.Is(err, raft.ErrRaftShutdown) {
			errs = append(errs, fmt.Errorf("cannot shut raft down: %w", err))
		}
	}
	if n.trans != nil {
		// Close pooled outgoing connections too (Close alone leaves them
		// open), so that the peers' handlers of them end.
		n.trans.CloseStreams()
		if err := n.trans.Close(); err != nil {
			errs = append(errs, fmt.Errorf("cannot close raft transport: %w", err))
		}
	}
	if n.store != nil {
		if err := n.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("cannot close raft log store: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Close stops the leader loop, shuts raft down (waiting at most 10 s),
// and closes the transport and the BoltDB store. It is idempotent; later
// calls return the first call's result.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		close(n.stop)
		<-n.done
		<-n.versionDone
		if n.batch != nil {
			<-n.batch.done
		}
		n.closeErr = n.release()
		if n.closeErr != nil {
			n.closeErr = fmt.Errorf("cannot close controller node %s: %w", n.cfg.ID, n.closeErr)
		}
	})
	return n.closeErr
}

// FSM returns the node's state machine, for reads and blocking queries.
// On a follower it may lag the leader by the replication delay.
func (n *Node) FSM() *lease.FSM { return n.fsm }

// ID returns the node's raft server ID.
func (n *Node) ID() string { return n.cfg.ID }

// RaftAddr returns the address raft listens on and advertises.
func (n *Node) RaftAddr() string { return string(n.trans.LocalAddr()) }

// APIAddr returns the HTTP address this node announces.
func (n *Node) APIAddr() string { return n.cfg.APIAddr }

// DiskFull reports whether a write under the data directory failed with
// "no space left on device" and the disk has not had room since: the node
// neither leads nor writes its log meanwhile (docs/controller.md).
func (n *Node) DiskFull() bool { return n.disk != nil && n.disk.Full() }

// IsLeader reports whether this node is the raft leader now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// LeaderReady reports whether this node is the raft leader and has
// applied every entry committed before its term (its barrier completed),
// so that what its FSM lacks does not exist: an unknown token is unknown,
// not a registration this node has yet to apply.
func (n *Node) LeaderReady() bool { return n.leaderReady.Load() && n.IsLeader() }

// VerifyLeader confirms with a quorum that this node still leads (a
// heartbeat round, no log write): a leader cut off from the others keeps
// its state for up to the leader lease timeout, while a new leader may
// already be applying writes.
func (n *Node) VerifyLeader(ctx context.Context) error {
	_, err := n.call(ctx, func(time.Duration) raft.Future { return n.raft.VerifyLeader() })
	return err
}

// Leader returns the raft leader as this node knows it ("" if none).
func (n *Node) Leader() (id, raftAddr string) {
	addr, sid := n.raft.LeaderWithID()
	return string(sid), string(addr)
}

// Removed reports whether this node has been removed from the cluster:
// its latest raft configuration (committed or not) lists servers, but not
// this node. A node that has not joined yet has an empty configuration and
// is not removed. Cheap: raft keeps the latest configuration in memory.
func (n *Node) Removed() bool {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	servers := f.Configuration().Servers
	return len(servers) > 0 && !slices.ContainsFunc(servers, func(s raft.Server) bool {
		return s.ID == raft.ServerID(n.cfg.ID)
	})
}

// RaftState returns "leader", "follower", "candidate" or "shutdown".
func (n *Node) RaftState() string { return strings.ToLower(n.raft.State().String()) }

// anyPort reports whether addr asks for a free port ("host:0").
func anyPort(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	return err == nil && port == "0"
}
