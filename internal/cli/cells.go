package cli

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// criticalities are the values a cell's criticality may take, least first.
var criticalities = []string{"low", "medium", "high", "critical"}

func newCellsCommand(a *app) *cobra.Command {
	cmd := makeGroup(&cobra.Command{
		Use:   "cells",
		Short: "List, define and delete cells",
		Long: `Cells group hosts (a rack, a zone, a customer shard). Plans roll out to the
least risky cells first: by risk, then criticality, then fewer users, then
fewer hosts.`,
	})
	cmd.AddCommand(newCellsListCommand(a), newCellsSetCommand(a), newCellsDeleteCommand(a))
	return cmd
}

func newCellsListCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List cells with their risk and host count",
		Example: `  rollwave cells list`,
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cells, err := listCells(a, cmd)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONList(cmd.OutOrStdout(), "cells", cells)
			}
			t := newTable(cmd.OutOrStdout(), "NAME", "RISK", "CRITICALITY", "USERS", "HOSTS", "UPDATED")
			for _, cv := range cells {
				c := cv.GetCell()
				t.row(c.GetName(), strconv.Itoa(int(c.GetRisk())), c.GetCriticality(),
					strconv.FormatInt(c.GetUsers(), 10), strconv.Itoa(int(cv.GetHosts())), timestamp(c.GetUpdatedUnixNano()))
			}
			return t.flush()
		},
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
}

func listCells(a *app, cmd *cobra.Command) ([]*rollwavev1.CellView, error) {
	resp, err := invoke(a, cmd, rollwavev1.OperatorServiceClient.ListCells, &rollwavev1.ListCellsRequest{})
	if err != nil {
		return nil, err
	}
	return resp.GetCells(), nil
}

func newCellsSetCommand(a *app) *cobra.Command {
	var (
		risk        int32
		criticality string
		users       int64
	)
	cmd := &cobra.Command{
		Use:   "set NAME [-risk N] [-criticality low|medium|high|critical] [-users N]",
		Short: "Create a cell or change its risk, criticality and users",
		Long: `Create or update a cell. Flags left out keep the cell's current values; a new
cell needs -criticality (risk and users default to 0).

  -risk         lower is less risky; plans start with the least risky cells
  -criticality  low, medium, high or critical
  -users        how many users the cell serves`,
		Example: `  rollwave cells set eu-1a -risk 1 -criticality low -users 1200
  rollwave cells set eu-1a -risk 3`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := strings.TrimSpace(args[0])
			flags := cmd.Flags()
			if name == "" {
				return usageErrorf("cell name must not be empty")
			}
			if flags.Changed("risk") && risk < 0 {
				return usageErrorf("invalid -risk %d: must be 0 or more", risk)
			}
			if flags.Changed("users") && users < 0 {
				return usageErrorf("invalid -users %d: must be 0 or more", users)
			}
			if flags.Changed("criticality") && !slices.Contains(criticalities, criticality) {
				return usageErrorf("invalid -criticality %q: must be one of %s", criticality, strings.Join(criticalities, ", "))
			}
			if !flags.Changed("risk") && !flags.Changed("criticality") && !flags.Changed("users") {
				return usageErrorf("nothing to set: give -risk, -criticality and/or -users")
			}

			// SetCell replaces the whole cell; start from the current one so
			// "cells set X -risk 3" changes only the risk.
			cells, err := listCells(a, cmd)
			if err != nil {
				return err
			}
			cell := &rollwavev1.Cell{Name: name}
			for _, cv := range cells {
				if cv.GetCell().GetName() == name {
					cell = cv.GetCell()
				}
			}
			if flags.Changed("risk") {
				cell.Risk = risk
			}
			if flags.Changed("criticality") {
				cell.Criticality = criticality
			}
			if flags.Changed("users") {
				cell.Users = users
			}
			if cell.Criticality == "" {
				return usageErrorf("cell %q is new: -criticality is required (%s)", name, strings.Join(criticalities, ", "))
			}

			resp, err := invoke(a, cmd, rollwavev1.OperatorServiceClient.SetCell, &rollwavev1.SetCellRequest{Cell: cell, Actor: actor()})
			if err != nil {
				return err
			}
			c := resp.GetCell()
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Cell %s: risk %d, criticality %s, users %d\n",
				c.GetName(), c.GetRisk(), c.GetCriticality(), c.GetUsers())
			return err
		},
	}
	cmd.Flags().Int32Var(&risk, "risk", 0, "risk rank; lower rolls out earlier")
	cmd.Flags().StringVar(&criticality, "criticality", "", "low, medium, high or critical")
	cmd.Flags().Int64Var(&users, "users", 0, "number of users the cell serves")
	return cmd
}

func newCellsDeleteCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME",
		Short:   "Delete a cell definition",
		Long:    `Delete a cell definition (its risk, criticality and users) from the cluster.`,
		Example: `  rollwave cells delete eu-1a`,
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := invoke(a, cmd, rollwavev1.OperatorServiceClient.DeleteCell, &rollwavev1.DeleteCellRequest{Name: args[0], Actor: actor()}); err != nil {
				return err
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "Deleted cell %s\n", args[0])
			return err
		},
	}
}
