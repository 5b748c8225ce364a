package metrics

import (
	"encoding/json"
	"fmt"
	"os"
)

// Dashboard is what drillbot's tests read of the Grafana dashboard the
// chart ships: its panels' queries and its variables'.
type Dashboard struct {
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
	Templating struct {
		List []struct {
			Query any `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

// ReadDashboard decodes the dashboard JSON at path.
func ReadDashboard(path string) (*Dashboard, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var d Dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("dashboard %s is not valid JSON: %w", path, err)
	}
	return &d, nil
}
