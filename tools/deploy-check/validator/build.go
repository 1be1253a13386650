package main

import (
	"fmt"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Object is one rendered resource.
type Object struct {
	APIVersion string
	Kind       string
	Name       string
	Namespace  string
	// JSON is the resource as kustomize rendered it; Map is the same, decoded.
	JSON []byte
	Map  map[string]interface{}
}

// Rendered is the output of one `kustomize build`.
type Rendered struct {
	YAML    []byte
	Objects []Object
}

// Build runs kustomize (the library behind `kustomize build`, default options) on a folder.
func Build(dir string) (*Rendered, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resMap, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, err
	}
	yaml, err := resMap.AsYaml()
	if err != nil {
		return nil, err
	}
	out := &Rendered{YAML: yaml}
	for _, res := range resMap.Resources() {
		data, err := res.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %w", res.GetKind(), res.GetName(), err)
		}
		m, err := res.Map()
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %w", res.GetKind(), res.GetName(), err)
		}
		out.Objects = append(out.Objects, Object{
			APIVersion: res.GetApiVersion(),
			Kind:       res.GetKind(),
			Name:       res.GetName(),
			Namespace:  res.GetNamespace(),
			JSON:       data,
			Map:        m,
		})
	}
	return out, nil
}
