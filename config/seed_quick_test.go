package config

import "testing"

func TestQuick(t *testing.T) {
	for _, f := range []string{"testdata/seed-ecr.yaml", "testdata/seed-ghcr.yaml"} {
		c, err := Load(f)
		if err != nil {
			t.Fatal(err)
		}
		e := c.Registries.Clients()[0].Entry
		t.Logf("%+v", *e)
	}
	_, err := Parse([]byte("registries:\n- name: x\n  api_url: https://x\n  prefix: x\n  credsexpire: 10x\n"))
	t.Log(err)
	_, err = Parse([]byte("registries:\n- name: x\n  api_url: https://x\n  prefix: x\n  pingg: yes\n"))
	t.Log(err)
	_, err = Parse([]byte("registries:\n- name: x\n  api_url: https://x\n  prefix: x\n  ping: maybe\n"))
	t.Log(err)
}
