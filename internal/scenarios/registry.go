// Package scenarios registers drillbot's scenario kinds. Each kind lives in
// its own package; adding one is one line here.
package scenarios

import (
	"context"
	"log/slog"
	"net"

	"k8s.io/utils/clock"

	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/kube"
	"github.com/drillbot-io/drillbot/internal/scenarios/admissionprobe"
	"github.com/drillbot-io/drillbot/internal/scenarios/backupcoverage"
	"github.com/drillbot-io/drillbot/internal/scenarios/blockegress"
	"github.com/drillbot-io/drillbot/internal/scenarios/corruptconfig"
	"github.com/drillbot-io/drillbot/internal/scenarios/encryptionatrest"
	"github.com/drillbot-io/drillbot/internal/scenarios/failoverrestore"
	"github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
	"github.com/drillbot-io/drillbot/internal/scenarios/podkill"
	"github.com/drillbot-io/drillbot/internal/scenarios/podsecurityaudit"
	"github.com/drillbot-io/drillbot/internal/scenarios/signedimages"
	"github.com/drillbot-io/drillbot/internal/scenarios/tlogoutage"
)

// Deps are what scenario kinds get from the outside.
type Deps struct {
	Clients *kube.Clients
	Clock   clock.PassiveClock
	Logger  *slog.Logger
	// Protected namespaces are never targets, whatever their labels
	// (drillbot's own namespace among them).
	Protected []string
	// Dial opens drillbot's own connections to workloads (pod-kill's
	// NetworkPolicy check); nil is a net.Dialer's. Tests give one that
	// dials from inside a pod's network, where drillbot runs in a cluster.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Registry returns every scenario kind. With nil Clients the kinds can only
// validate drills (drillbot validate needs no cluster).
func Registry(d Deps) engine.Registry {
	var (
		nr namespacerestore.Deps
		ap admissionprobe.Deps
		pk podkill.Deps
		cc corruptconfig.Deps
		be blockegress.Deps
		fr failoverrestore.Deps
		bc backupcoverage.Deps
		ps podsecurityaudit.Deps
		ea encryptionatrest.Deps
		si signedimages.Deps
		tl tlogoutage.Deps
	)
	if d.Clients != nil {
		ap = admissionprobe.Deps{Kube: d.Clients.Kube, Protected: d.Protected}
		be = blockegress.Deps{Kube: d.Clients.Kube, Dynamic: d.Clients.Dynamic, Protected: d.Protected}
		cc = corruptconfig.Deps{Kube: d.Clients.Kube, Logger: d.Logger, Protected: d.Protected}
		pk = podkill.Deps{Kube: d.Clients.Kube, Dynamic: d.Clients.Dynamic, Clock: d.Clock, Logger: d.Logger, Protected: d.Protected, Dial: d.Dial}
		nr = namespacerestore.Deps{Kube: d.Clients.Kube, Dynamic: d.Clients.Dynamic, Metadata: d.Clients.Metadata,
			Discovery: d.Clients.Discovery, Clock: d.Clock, Logger: d.Logger, Protected: d.Protected}
		fr = failoverrestore.Deps{Kube: d.Clients.Kube, Dynamic: d.Clients.Dynamic, Metadata: d.Clients.Metadata,
			Discovery: d.Clients.Discovery, Contents: failoverrestore.VeleroContents{VeleroDownloads: namespacerestore.VeleroDownloads{Dynamic: d.Clients.Dynamic}},
			Clock: d.Clock, Logger: d.Logger, Protected: d.Protected}
		bc = backupcoverage.Deps{Kube: d.Clients.Kube, Dynamic: d.Clients.Dynamic, Clock: d.Clock, Logger: d.Logger}
		ps = podsecurityaudit.Deps{Kube: d.Clients.Kube, Logger: d.Logger}
		ea = encryptionatrest.Deps{Kube: d.Clients.Kube, REST: d.Clients.Config, Logger: d.Logger}
		si = signedimages.Deps{Kube: d.Clients.Kube, Logger: d.Logger}
		tl = tlogoutage.Deps{Kube: d.Clients.Kube, Clock: d.Clock, Protected: d.Protected}
	}
	return engine.Registry{
		namespacerestore.Name: namespacerestore.Kind{Deps: nr},
		admissionprobe.Name:   admissionprobe.Kind{Deps: ap},
		podkill.Name:          podkill.Kind{Deps: pk},
		corruptconfig.Name:    corruptconfig.Kind{Deps: cc},
		blockegress.Name:      blockegress.Kind{Deps: be},
		failoverrestore.Name:  failoverrestore.Kind{Deps: fr},
		backupcoverage.Name:   backupcoverage.Kind{Deps: bc},
		podsecurityaudit.Name: podsecurityaudit.Kind{Deps: ps},
		encryptionatrest.Name: encryptionatrest.Kind{Deps: ea},
		signedimages.Name:     signedimages.Kind{Deps: si},
		tlogoutage.Name:       tlogoutage.Kind{Deps: tl},
	}
}
