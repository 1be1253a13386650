// deploy-check renders kustomize overlays and validates every resource offline: built-in kinds are
// decoded strictly into Kubernetes' API types (k8s.io/api), custom resources are checked against the
// openAPIV3Schema of their CRD (structural schema validation, CEL rules, and pruning to find unknown
// fields). It prints the count of validated resources per kind and one line per problem, naming the
// resource and the field; it exits 1 when any resource is invalid, 2 on a usage or build error.
//
//	deploy-check -crds k8s/crds [-out DIR] k8s/overlays/dev k8s/overlays/gpu
//
// With -out, each overlay's rendered YAML (<name>.yaml), its resources as a JSON array (<name>.json)
// and a report of all overlays (report.json) are written to DIR.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// Problem is one validation error: which resource, which field, what is wrong.
type Problem struct {
	Overlay   string `json:"overlay"`
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
	Field     string `json:"field"`
	Message   string `json:"message"`
}

func (p Problem) String() string {
	ns := ""
	if p.Namespace != "" {
		ns = " (namespace " + p.Namespace + ")"
	}
	return fmt.Sprintf("%s: %s/%s%s: %s: %s", p.Overlay, p.Kind, p.Name, ns, p.Field, p.Message)
}

// OverlayReport is what one overlay rendered to and how it validated.
type OverlayReport struct {
	Overlay  string         `json:"overlay"`
	Counts   map[string]int `json:"counts"`
	Problems []Problem      `json:"problems"`
}

func main() {
	crdDir := flag.String("crds", "", "folder of CustomResourceDefinition YAML files (required)")
	outDir := flag.String("out", "", "folder to write the rendered overlays and report.json to")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: deploy-check -crds DIR [-out DIR] OVERLAY...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *crdDir == "" || flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	crds, err := LoadCRDs(*crdDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "deploy-check:", err)
		os.Exit(2)
	}
	if *outDir != "" {
		if err := os.MkdirAll(*outDir, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "deploy-check:", err)
			os.Exit(2)
		}
	}
	validator := NewValidator(crds)
	reports := []OverlayReport{}
	invalid := false
	for _, overlay := range flag.Args() {
		rendered, err := Build(overlay)
		if err != nil {
			fmt.Fprintf(os.Stderr, "deploy-check: kustomize build %s: %v\n", overlay, err)
			os.Exit(2)
		}
		report := OverlayReport{Overlay: overlay, Counts: map[string]int{}, Problems: []Problem{}}
		objects := make([]map[string]interface{}, 0, len(rendered.Objects))
		for _, obj := range rendered.Objects {
			problems := validator.Validate(obj)
			for i := range problems {
				problems[i].Overlay = overlay
			}
			report.Problems = append(report.Problems, problems...)
			report.Counts[obj.Kind]++
			objects = append(objects, obj.Map)
		}
		printReport(report)
		if len(report.Problems) > 0 {
			invalid = true
		}
		reports = append(reports, report)
		if *outDir != "" {
			name := filepath.Base(filepath.Clean(overlay))
			if err := os.WriteFile(filepath.Join(*outDir, name+".yaml"), rendered.YAML, 0o644); err != nil {
				fmt.Fprintln(os.Stderr, "deploy-check:", err)
				os.Exit(2)
			}
			if err := writeJSON(filepath.Join(*outDir, name+".json"), objects); err != nil {
				fmt.Fprintln(os.Stderr, "deploy-check:", err)
				os.Exit(2)
			}
		}
	}
	if *outDir != "" {
		if err := writeJSON(filepath.Join(*outDir, "report.json"), reports); err != nil {
			fmt.Fprintln(os.Stderr, "deploy-check:", err)
			os.Exit(2)
		}
	}
	if invalid {
		fmt.Println("deploy-check: INVALID")
		os.Exit(1)
	}
	fmt.Println("deploy-check: every resource is valid")
}

func printReport(r OverlayReport) {
	total := 0
	kinds := make([]string, 0, len(r.Counts))
	for kind, n := range r.Counts {
		kinds = append(kinds, kind)
		total += n
	}
	sort.Strings(kinds)
	fmt.Printf("%s: %d resources validated\n", r.Overlay, total)
	for _, kind := range kinds {
		fmt.Printf("  %-26s %3d\n", kind, r.Counts[kind])
	}
	for _, p := range r.Problems {
		fmt.Println("ERROR " + p.String())
	}
}

func writeJSON(path string, v interface{}) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
