package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/controller"
	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/internal/clock"
	"github.com/uniter-dev/uniter/internal/logging"
)

// Defaults of `uniter controller`.
const (
	DefaultAPIAddr  = "127.0.0.1:17070"
	DefaultRaftAddr = "127.0.0.1:17071"
)

type controllerOptions struct {
	dataDir, apiAddr, raftAddr, join, nodeID string
	lostAfter                                time.Duration
	maxBlocking                              int
	batchWrites, leaderRenew                 bool
	metricsTokenFile                         string
	logLevel                                 string
	// restore is a backup to restore into a freshly bootstrapped node.
	restore string
}

func newControllerCmd() *cobra.Command {
	var o controllerOptions
	cmd := &cobra.Command{
		Use:   "controller [--data-dir D] [--api-addr A] [--raft-addr R] [--join API_ADDR] [--node-id ID]",
		Short: "Run a controller node",
		Long: `Run a controller node: the raft-replicated lease store and its HTTPS API.

The first start without --join bootstraps a new single-node cluster: it makes the
cluster CA and the node's certificate (DATA_DIR/tls/, keys 0600), generates the admin
token and writes the admin client config (client.yaml, mode 0600, pinning the CA) into
the data directory. With --join API_ADDR the node has the controller at API_ADDR sign
its certificate and asks it to add the node as a raft voter, authenticated with the
admin token of the client config (--client-config, $UNITER_CLIENT_CONFIG or
$UNITER_HOME/client.yaml) over TLS to the CA it pins. The API is HTTPS only and raft
between nodes mutual TLS; 'uniter controller rotate-certs' gives every node a new
certificate without downtime (docs/controller.md, "TLS").

The node runs until SIGTERM or SIGINT. Started by systemd as a Type=notify service, it
says READY=1 once its API serves and STOPPING=1 when it begins to stop. Remove a node from its cluster with
'uniter controller remove-node ID'. 'uniter controller backup FILE' writes a
consistent copy of the state; --restore FILE, on the first start of a new data
directory, bootstraps a node holding that state (disaster recovery: then join the
other nodes to it).

The node speaks the controller protocol versions 'uniter version' prints. It
refuses to start on a data directory whose cluster runs a newer version, and to
join such a cluster; upgrade one node at a time (docs/upgrades.md).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runController(cmd, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.dataDir, "data-dir", filepath.Join(agent.Home(), "controller"), "the node's data directory")
	f.StringVar(&o.apiAddr, "api-addr", DefaultAPIAddr, "HOST:PORT of the HTTP API (advertised to other nodes)")
	f.StringVar(&o.raftAddr, "raft-addr", DefaultRaftAddr, "HOST:PORT of raft (advertised to other nodes)")
	f.StringVar(&o.join, "join", "", "API address of a controller node whose cluster to join")
	f.StringVar(&o.nodeID, "node-id", "", "the node's raft ID (default: the stored one, or a new random one)")
	f.DurationVar(&o.lostAfter, "lost-after", controller.DefaultLostAfter, "show a unit's agent lost after this long without a report")
	f.StringVar(&o.logLevel, "log-level", "info", "least level logged: debug, info, warn or error")
	f.IntVar(&o.maxBlocking, "max-blocking", controller.DefaultMaxBlocking, "blocking queries (agents' watches) one node serves at once; more get 503 busy")
	f.BoolVar(&o.leaderRenew, "leader-renew", true, "let the raft leader answer a holder's lease renewal from memory and write it back before its next time advance (protocol 7); false: every renewal is a raft log entry")
	f.BoolVar(&o.batchWrites, "batch-writes", true, "group concurrent writes into one raft log entry (one fsync and replication round for all); false: one entry per write")
	f.StringVar(&o.metricsTokenFile, "metrics-token-file", "", "a file holding a token that may read GET /metrics and nothing else (the admin token always may)")
	f.StringVar(&o.restore, "restore", "", "bootstrap a new data directory from this backup (see 'uniter controller backup')")
	addClientConfigFlag(cmd)
	cmd.AddCommand(newRemoveNodeCmd(), newBackupCmd(), newRotateCertsCmd())
	return cmd
}

func runController(cmd *cobra.Command, o controllerOptions) error {
	level, err := zerolog.ParseLevel(o.logLevel)
	if err != nil || o.logLevel == "" {
		return &UsageError{fmt.Errorf("bad --log-level %q", o.logLevel)}
	}
	if o.lostAfter <= 0 {
		return &UsageError{errors.New("--lost-after must be positive")}
	}
	if o.maxBlocking < 1 {
		return &UsageError{errors.New("--max-blocking must be at least 1")}
	}
	cfg := controller.NodeConfig{DataDir: o.dataDir, ID: o.nodeID, APIAddr: o.apiAddr, RaftAddr: o.raftAddr,
		Join: o.join, LostAfter: o.lostAfter, MaxBlocking: o.maxBlocking, NoBatching: !o.batchWrites, NoLeaderRenew: !o.leaderRenew, Clock: clock.Real}
	if o.metricsTokenFile != "" {
		data, err := os.ReadFile(o.metricsTokenFile)
		if err != nil {
			return fmt.Errorf("cannot read --metrics-token-file: %w", err)
		}
		tok := strings.TrimSpace(string(data))
		if len(tok) < 16 {
			return fmt.Errorf("cannot use --metrics-token-file %s: the token must be at least 16 characters", o.metricsTokenFile)
		}
		cfg.MetricsTokenHash = controller.HashToken(tok)
	}
	if o.join != "" {
		f, err := loadClientFile(cmd)
		if err != nil {
			return err
		}
		cfg.AdminToken = f.Token
		cfg.JoinCAFingerprint = f.Controller.CAFingerprint
		if f.Controller.CACert != "" {
			cfg.JoinCACert = []byte(f.Controller.CACert)
		}
	}
	logFile, err := logging.OpenRotating(filepath.Join(o.dataDir, "controller.log"), 10<<20, 3)
	if err != nil {
		return err
	}
	defer logFile.Close()
	console, _ := cmd.ErrOrStderr().(*os.File)
	cfg.Logger = logging.New(logging.Options{File: logFile, Console: console, Level: level})
	var backup []byte
	if o.restore != "" {
		if o.join != "" {
			return &UsageError{errors.New("--restore bootstraps a new cluster; it cannot be used with --join")}
		}
		if _, err := os.Stat(filepath.Join(o.dataDir, "raft.db")); err == nil {
			return fmt.Errorf("cannot restore into %s: it already holds a node's state; use a new data directory", o.dataDir)
		}
		if backup, err = os.ReadFile(o.restore); err != nil {
			return fmt.Errorf("cannot restore: %w", err)
		}
	}
	notifier := systemdNotifier{log: cfg.Logger}
	defer notifier.notifyStopping(cmd.Context())()
	return controller.Run(cmd.Context(), cfg, func(c *controller.Controller) error {
		if backup != nil {
			if err := restoreInto(cmd, c, backup); err != nil {
				return err
			}
		}
		printStarted(cmd, c)
		notifier.Ready() // the API listens and serves
		return nil
	})
}

func printStarted(cmd *cobra.Command, c *controller.Controller) {
	// One write, so that a reader never sees half of the message.
	var b strings.Builder
	n := c.Node()
	lo, hi := n.ProtocolRange()
	fmt.Fprintf(&b, "controller node %s: API on %s, raft on %s, protocol %d..%d\n", n.ID(), c.APIAddr(), n.RaftAddr(), lo, hi)
	if path, created := c.ClientFile(); created {
		fmt.Fprintf(&b, "bootstrapped a new controller; its admin client config is %s (mode 0600)\n", path)
		fmt.Fprintf(&b, "point the CLI at it with --%s %s, or:\n  export %s=%s\n", clientConfigFlag, path, ClientConfigEnv, path)
	}
	io.WriteString(cmd.OutOrStdout(), b.String())
}

func newRemoveNodeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "remove-node ID",
		Short: "Remove a controller node from its raft cluster (admin)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := loadClient(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.RemoveNode(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed controller node %s\n", args[0])
			return nil
		},
	}
}

func newRotateCertsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rotate-certs",
		Short: "Issue every controller node a new TLS certificate (admin)",
		Long: `Issue every controller node a new TLS certificate, signed by the cluster CA,
without downtime: each member, asked in turn at its own API address, issues itself
a new certificate and presents it from its next TLS handshake on (API and raft);
connections already open go on. Clients and agents pin the CA, not the node
certificates, so nothing else changes. The CA itself is not rotated (see
docs/controller.md, "TLS").`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runRotateCerts(cmd) },
	}
}

func runRotateCerts(cmd *cobra.Command) error {
	f, err := loadClientFile(cmd)
	if err != nil {
		return err
	}
	c, err := loadClient(cmd)
	if err != nil {
		return err
	}
	defer c.Close()
	addrs, err := c.MemberAddresses(cmd.Context())
	if err != nil {
		return err
	}
	var failed []string
	for _, addr := range addrs {
		cfg := f.Config()
		cfg.Addresses = []string{addr}
		one, err := client.New(cfg)
		if err != nil {
			return err
		}
		cert, err := one.RotateNodeCertificate(cmd.Context())
		one.Close()
		if err != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "cannot rotate the certificate of the node at %s: %v\n", addr, err)
			failed = append(failed, addr)
			continue
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s (%s): new certificate serial %s, valid until %s\n",
			cert.ID, addr, cert.Serial, cert.NotAfter.Format(time.RFC3339))
	}
	if len(failed) > 0 {
		return fmt.Errorf("cannot rotate the certificates of the nodes at %s", strings.Join(failed, ", "))
	}
	return nil
}

// exactArgs wants n positional arguments, else a usage error.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return &UsageError{fmt.Errorf("%q wants %d argument(s), got %d", cmd.CommandPath(), n, len(args))}
		}
		return nil
	}
}
