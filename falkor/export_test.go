package falkor

// EncodeParams exposes the parameter encoder to the external tests.
func EncodeParams(params map[string]any) (string, error) {
	b, err := appendParams(nil, params)
	if err != nil {
		return "", err
	}
	return string(b), nil
}
