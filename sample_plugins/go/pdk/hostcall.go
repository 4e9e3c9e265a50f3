package pdk

// callService encodes req, calls the host import fn and decodes its answer
// into resp. Host functions have no error channel of their own: a failing
// service either traps the whole export call (hard error) or reports the
// problem in the response's error field (soft error). The returned error is
// therefore only a decode failure of the response.
func callService(fn hostImport, req, resp Message) error {
	in, err := req.Marshal()
	if err != nil {
		return err
	}
	return resp.Unmarshal(hostCall(fn, in))
}
