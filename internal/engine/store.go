package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
)

// RunStore persists DrillRuns. KubeStore is the implementation; the engine
// only needs these calls.
type RunStore interface {
	Create(ctx context.Context, run *v1alpha1.DrillRun) (*v1alpha1.DrillRun, error)
	UpdateStatus(ctx context.Context, run *v1alpha1.DrillRun) (*v1alpha1.DrillRun, error)
	Get(ctx context.Context, name string) (*v1alpha1.DrillRun, error)
	List(ctx context.Context, selector string) ([]v1alpha1.DrillRun, error)
	Delete(ctx context.Context, name string) error
}

// KubeStore keeps DrillRuns in one namespace through the dynamic client.
type KubeStore struct {
	Client    dynamic.Interface
	Namespace string
	// REST, when set, is what List reads through: JSON decoded straight
	// into DrillRuns, where the dynamic client decodes into maps that are
	// then encoded and decoded again (three times the work; for readers of
	// many runs, such as drillbot report). Any client of the API server
	// will do: the path is absolute.
	REST rest.Interface
}

var _ RunStore = (*KubeStore)(nil)

func (s *KubeStore) res() dynamic.ResourceInterface {
	return s.Client.Resource(v1alpha1.DrillRunResource).Namespace(s.Namespace)
}

// Create creates the run.
func (s *KubeStore) Create(ctx context.Context, run *v1alpha1.DrillRun) (*v1alpha1.DrillRun, error) {
	run.APIVersion, run.Kind = v1alpha1.APIVersion, "DrillRun"
	u, err := toUnstructured(run)
	if err != nil {
		return nil, err
	}
	out, err := s.res().Create(ctx, u, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create DrillRun: %w", err)
	}
	return fromUnstructured(out)
}

// UpdateStatus writes the run's status. It fails on a conflict: the engine
// is the only writer of a run it holds, so a conflict means someone else
// changed it and must not be overwritten blindly.
func (s *KubeStore) UpdateStatus(ctx context.Context, run *v1alpha1.DrillRun) (*v1alpha1.DrillRun, error) {
	run.APIVersion, run.Kind = v1alpha1.APIVersion, "DrillRun"
	u, err := toUnstructured(run)
	if err != nil {
		return nil, err
	}
	out, err := s.res().UpdateStatus(ctx, u, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("update DrillRun %s status: %w", run.Name, err)
	}
	return fromUnstructured(out)
}

// Get reads one run.
func (s *KubeStore) Get(ctx context.Context, name string) (*v1alpha1.DrillRun, error) {
	out, err := s.res().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get DrillRun %s: %w", name, err)
	}
	return fromUnstructured(out)
}

// listPage is how many runs one List request returns at most.
const listPage = 250

// List lists runs matching a label selector, a page at a time.
func (s *KubeStore) List(ctx context.Context, selector string) ([]v1alpha1.DrillRun, error) {
	if s.REST != nil {
		return s.listTyped(ctx, selector)
	}
	var runs []v1alpha1.DrillRun
	opts := metav1.ListOptions{LabelSelector: selector, Limit: listPage}
	for {
		list, err := s.res().List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("list DrillRuns: %w", err)
		}
		for i := range list.Items {
			r, err := fromUnstructured(&list.Items[i])
			if err != nil {
				return nil, err
			}
			runs = append(runs, *r)
		}
		if opts.Continue = list.GetContinue(); opts.Continue == "" {
			return runs, nil
		}
	}
}

// listTyped is List through s.REST. Each page's continue token is read
// first (it precedes the items), so the next page is being fetched while
// this one is decoded, into a slot of its own.
func (s *KubeStore) listTyped(ctx context.Context, selector string) ([]v1alpha1.DrillRun, error) {
	gvr := v1alpha1.DrillRunResource
	var (
		pages  []*[]v1alpha1.DrillRun
		decode errgroup.Group
	)
	for cont := ""; ; {
		req := s.REST.Get().AbsPath("/apis", gvr.Group, gvr.Version, "namespaces", s.Namespace, gvr.Resource).Param("limit", strconv.Itoa(listPage))
		if selector != "" {
			req = req.Param("labelSelector", selector)
		}
		if cont != "" {
			req = req.Param("continue", cont)
		}
		raw, err := req.DoRaw(ctx)
		if err == nil {
			cont, err = continueToken(raw)
		}
		if err != nil {
			_ = decode.Wait()
			return nil, fmt.Errorf("list DrillRuns: %w", err)
		}
		items := new([]v1alpha1.DrillRun)
		pages = append(pages, items)
		decode.Go(func() error {
			var page struct {
				Items []v1alpha1.DrillRun `json:"items"`
			}
			if err := json.Unmarshal(raw, &page); err != nil {
				return fmt.Errorf("list DrillRuns: decode: %w", err)
			}
			*items = page.Items
			return nil
		})
		if cont == "" {
			break
		}
	}
	if err := decode.Wait(); err != nil {
		return nil, err
	}
	var runs []v1alpha1.DrillRun
	for _, p := range pages {
		runs = append(runs, *p...)
	}
	return runs, nil
}

// continueToken reads a list's metadata.continue without decoding its
// items: the API server writes metadata before items; when it does not,
// the whole list is decoded.
func continueToken(raw []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil {
		return "", fmt.Errorf("decode: %w", err)
	} else if t != json.Delim('{') {
		return "", fmt.Errorf("decode: not a list object (starts with %v)", t)
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return "", fmt.Errorf("decode: %w", err)
		}
		switch key {
		case "metadata":
			var m metav1.ListMeta
			if err := dec.Decode(&m); err != nil {
				return "", fmt.Errorf("decode: %w", err)
			}
			return m.Continue, nil
		case "items":
			var l struct {
				Metadata metav1.ListMeta `json:"metadata"`
			}
			if err := json.Unmarshal(raw, &l); err != nil {
				return "", fmt.Errorf("decode: %w", err)
			}
			return l.Metadata.Continue, nil
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return "", fmt.Errorf("decode: %w", err)
			}
		}
	}
	return "", nil
}

// Delete deletes a run.
func (s *KubeStore) Delete(ctx context.Context, name string) error {
	if err := s.res().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete DrillRun %s: %w", name, err)
	}
	return nil
}

// toUnstructured and fromUnstructured go through JSON so the raw params and
// undo data keep their shape.
func toUnstructured(run *v1alpha1.DrillRun) (*unstructured.Unstructured, error) {
	data, err := json.Marshal(run)
	if err != nil {
		return nil, fmt.Errorf("encode DrillRun: %w", err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(data); err != nil {
		return nil, fmt.Errorf("encode DrillRun: %w", err)
	}
	return u, nil
}

func fromUnstructured(u *unstructured.Unstructured) (*v1alpha1.DrillRun, error) {
	data, err := u.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("decode DrillRun %s: %w", u.GetName(), err)
	}
	var run v1alpha1.DrillRun
	if err := json.Unmarshal(data, &run); err != nil {
		return nil, fmt.Errorf("decode DrillRun %s: %w", u.GetName(), err)
	}
	return &run, nil
}

// IsNotFound reports whether err is a Kubernetes NotFound.
func IsNotFound(err error) bool { return apierrors.IsNotFound(err) }
