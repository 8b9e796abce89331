package submission

import "strings"

// NormalizeAddress spells an email address the way its mailbox is
// counted: lower-cased, without a +tag (subaddress) in the local part,
// and for Gmail without dots and with googlemail.com as gmail.com, so
// the many spellings of one mailbox share one autoresponder limit. It
// is for counting only; mail goes to the address as written.
func NormalizeAddress(addr string) string {
	addr = strings.ToLower(strings.TrimSpace(addr))
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 {
		return addr
	}
	local, domain := addr[:at], strings.TrimSuffix(addr[at+1:], ".")
	if i := strings.IndexByte(local, '+'); i > 0 {
		local = local[:i]
	}
	if domain == "googlemail.com" {
		domain = "gmail.com"
	}
	if domain == "gmail.com" {
		local = strings.ReplaceAll(local, ".", "")
	}
	return local + "@" + domain
}

// AddressDomain is the domain of an address as NormalizeAddress spells
// it, "" when it has none.
func AddressDomain(addr string) string {
	n := NormalizeAddress(addr)
	if at := strings.LastIndexByte(n, '@'); at >= 0 {
		return n[at+1:]
	}
	return ""
}
