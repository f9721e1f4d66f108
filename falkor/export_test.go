package falkor

// EncodeParams exposes the parameter encoder to the external tests.
func EncodeParams(params map[string]any) (string, error) {
	b, err := appendParams(nil, params)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// ScopePools is the number of scoped users' pools c keeps open.
func ScopePools(c *Client) int {
	c.scopes.mu.Lock()
	defer c.scopes.mu.Unlock()
	return len(c.scopes.entries)
}
