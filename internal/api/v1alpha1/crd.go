package v1alpha1

import _ "embed"

// DrillRunCRD is the CustomResourceDefinition of DrillRun, as YAML.
//
//go:embed crd/drillbot.io_drillruns.yaml
var DrillRunCRD []byte
