package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/controller/client"
)

// checkEndpointArgs refuses a malformed APP[:ENDPOINT] with a usage error.
func checkEndpointArgs(args []string) error {
	for _, a := range args {
		if _, _, err := api.ParseEndpointRef(a); err != nil {
			return &UsageError{fmt.Errorf("bad endpoint %q: want APP or APP:ENDPOINT", a)}
		}
	}
	return nil
}

func newRelateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "relate APP[:ENDPOINT] APP[:ENDPOINT]",
		Aliases: []string{"integrate"},
		Short:   "Relate two applications' endpoints (admin)",
		Long: `Relate a requires endpoint of one application to a provides endpoint of the same
interface of another, as Juju's relate (integrate) does. An endpoint left out is inferred:
the one pair of the two applications' endpoints that relates is taken; if there is none,
or more than one, the command says so and names the candidates, and nothing is changed.
A peers endpoint needs no relate: its relation is made with the application.

The units of both applications then run their relation hooks. The relation shows in
'uniter status' and 'uniter relations'.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return &UsageError{fmt.Errorf("want APP[:ENDPOINT] APP[:ENDPOINT], got %d arguments", len(args))}
			}
			return checkEndpointArgs(args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := loadClient(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			r, err := c.AddRelation(cmd.Context(), args[0], args[1])
			if err != nil {
				return err // the controller's message names the endpoints and the reason
			}
			fmt.Fprintf(cmd.OutOrStdout(), "added relation %d: %s (%s)\n", r.ID, r.Key, r.Interface)
			return nil
		},
	}
	addClientConfigFlag(cmd)
	return cmd
}

func newRemoveRelationCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "remove-relation APP[:ENDPOINT] APP[:ENDPOINT] | remove-relation ID",
		Short: "Remove a relation between two applications (admin)",
		Long: `Remove the relation joining the two endpoints (an endpoint left out matches any of
the application's), or the relation with ID (N or ENDPOINT:N, as 'uniter relations'
shows it). The units in its scope run -relation-departed and -relation-broken and leave
it; the relation is gone once the last has. A peer relation cannot be removed: it lasts
as long as its application.`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch len(args) {
			case 1:
				if _, _, err := api.ParseRelationID(args[0]); err != nil {
					return &UsageError{fmt.Errorf("bad relation id %q: want N or ENDPOINT:N (or two endpoints APP[:ENDPOINT])", args[0])}
				}
				return nil
			case 2:
				return checkEndpointArgs(args)
			}
			return &UsageError{fmt.Errorf("want APP[:ENDPOINT] APP[:ENDPOINT] or ID, got %d arguments", len(args))}
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := loadClient(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			return runRemoveRelation(cmd, c, args)
		},
	}
	addClientConfigFlag(cmd)
	return cmd
}

func runRemoveRelation(cmd *cobra.Command, c *client.Client, args []string) error {
	ctx := cmd.Context()
	all, err := c.Relations(ctx)
	if err != nil {
		return err
	}
	var r api.Relation
	if len(args) == 1 {
		_, id, _ := api.ParseRelationID(args[0])
		r = api.Relation{ID: id, Key: args[0]}
		for _, have := range all {
			if have.ID == id {
				r = have
			}
		}
	} else if r, err = findRelation(all, args[0], args[1]); err != nil {
		return err
	}
	spec := args[0]
	if len(args) == 2 {
		spec = strconv.Itoa(r.ID)
	}
	if err := c.RemoveRelation(ctx, spec); err != nil {
		return fmt.Errorf("cannot remove relation %s: %w", r.Key, err)
	}
	left, err := c.Relations(ctx)
	if err != nil {
		return err
	}
	for _, have := range left {
		if have.ID == r.ID {
			fmt.Fprintf(cmd.OutOrStdout(), "relation %d (%s) is dying: it is gone once its %d unit(s) in scope have run their -departed and -broken hooks\n",
				r.ID, r.Key, len(have.Scope))
			return nil
		}
	}
	fmt.Fprintf(cmd.OutOrStdout(), "removed relation %d (%s)\n", r.ID, r.Key)
	return nil
}

// findRelation is the one relation of all that joins the endpoints a and
// b (each "app" or "app:endpoint"), in either order.
func findRelation(all []api.Relation, a, b string) (api.Relation, error) {
	matches := func(ref string, e api.RelationEndpoint) bool {
		app, ep, _ := api.ParseEndpointRef(ref)
		return e.App == app && (ep == "" || ep == e.Name)
	}
	var found []api.Relation
	for _, r := range all {
		if len(r.Endpoints) != 2 {
			continue // a peer relation joins no two applications
		}
		x, y := r.Endpoints[0], r.Endpoints[1]
		if matches(a, x) && matches(b, y) || matches(a, y) && matches(b, x) {
			found = append(found, r)
		}
	}
	switch len(found) {
	case 0:
		return api.Relation{}, fmt.Errorf("no relation joins %s and %s (see 'uniter relations')", a, b)
	case 1:
		return found[0], nil
	}
	var keys []string
	for _, r := range found {
		keys = append(keys, fmt.Sprintf("%d (%s)", r.ID, r.Key))
	}
	return api.Relation{}, fmt.Errorf("%s and %s could mean relation %s: name the endpoints, or the relation's id",
		a, b, strings.Join(keys, " or "))
}

func newRelationsCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "relations [APP] [--format table|json|yaml]",
		Short: "List relations: endpoints, interface, type and the units in scope",
		Long: `List every relation (admin), or APP's, with its id, provider and requirer endpoints,
interface, type (regular or peer), life and the units that have entered its scope.
--format json|yaml prints the relations as the API has them (docs/controller.md).`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return &UsageError{fmt.Errorf("want at most one APP, got %d arguments", len(args))}
			}
			switch format {
			case "table", "json", "yaml":
			default:
				return &UsageError{fmt.Errorf("--format must be table, json or yaml, got %q", format)}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := loadClient(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			var rels []api.Relation
			if len(args) == 1 {
				rels, err = c.ApplicationRelations(cmd.Context(), args[0])
			} else {
				rels, err = c.Relations(cmd.Context())
			}
			if err != nil {
				return err
			}
			if rels == nil {
				rels = []api.Relation{}
			}
			if format != "table" {
				return printData(cmd.OutOrStdout(), map[string][]api.Relation{"relations": rels}, format)
			}
			if len(rels) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no relations")
				return nil
			}
			var rows []api.RelationStatus
			for _, r := range rels {
				rows = append(rows, relationRow(r))
			}
			printRelations(cmd.OutOrStdout(), rows)
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "output format: table, json or yaml")
	addClientConfigFlag(cmd)
	return cmd
}

// relationRow is r as a row of the status's relations table.
func relationRow(r api.Relation) api.RelationStatus {
	row := api.RelationStatus{ID: r.ID, Key: r.Key, Interface: r.Interface, Type: api.RelationRegular, Life: r.Life, Units: r.Scope}
	switch {
	case r.Peer && len(r.Endpoints) == 1:
		row.Type, row.Provider, row.Requirer = api.RelationPeer, r.Endpoints[0].String(), r.Endpoints[0].String()
	case len(r.Endpoints) == 2:
		row.Requirer, row.Provider = r.Endpoints[0].String(), r.Endpoints[1].String()
	}
	return row
}

// printRelations prints Juju's integration table, with the relation's id,
// life and the units in its scope.
func printRelations(out io.Writer, rows []api.RelationStatus) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "INTEGRATION PROVIDER\tREQUIRER\tINTERFACE\tTYPE\tID\tLIFE\tUNITS")
	for _, r := range rows {
		units := "-"
		if len(r.Units) > 0 {
			units = strings.Join(r.Units, ",")
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.Provider, r.Requirer, r.Interface, r.Type, r.ID, dash(r.Life), units)
	}
	w.Flush()
}
