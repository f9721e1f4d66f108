package falkor

// MentionsLoadCSV reports whether query may contain a LOAD CSV clause. It is
// the rule behind Options.DenyLoadCSV, built to err on the side of refusing:
// it does not parse Cypher, so that no lexer difference between it and the
// server (comments, string escapes, unusual whitespace) can hide a clause.
//
// A query mentions LOAD CSV if the word LOAD is followed, anywhere later, by
// the word CSV, in any letter case. A word is a run of those letters not
// joined to an ASCII letter, digit or underscore on the side that would make
// it part of a longer identifier (digits before it do not count: "1LOAD" is
// taken as a mention). Whatever lies between the two words is ignored:
// whitespace, comments, newlines, other clauses. So
//
//	LOAD CSV FROM ..., load/* x */csv, LOAD
//	  // comment
//	  CSV
//
// are all refused, while Download, csv_file and LOADER are not words of the
// rule. A query that merely names both words, in a string or a comment, is
// refused too; pass such text as a parameter value instead.
func MentionsLoadCSV(query string) bool {
	i := findWord(query, "load", 0)
	return i >= 0 && findWord(query, "csv", i+4) >= 0
}

// findWord returns the index of the first occurrence of the lower-case ASCII
// word w in s at or after from (case-insensitively, with the boundaries of
// MentionsLoadCSV), or -1.
func findWord(s, w string, from int) int {
	for i := from; i+len(w) <= len(s); i++ {
		if !hasFoldPrefix(s[i:], w) {
			continue
		}
		if i > 0 && isWordStartJoin(s[i-1]) {
			continue
		}
		if j := i + len(w); j < len(s) && isWordEndJoin(s[j]) {
			continue
		}
		return i
	}
	return -1
}

func hasFoldPrefix(s, w string) bool {
	for k := 0; k < len(w); k++ {
		if s[k]|0x20 != w[k] { // ASCII letters only: w is lower case
			return false
		}
	}
	return true
}

// isWordStartJoin: a byte before a word that makes the word the tail of an
// identifier. Digits do not: a number may precede a keyword.
func isWordStartJoin(c byte) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// isWordEndJoin: a byte after a word that makes it the head of an identifier.
func isWordEndJoin(c byte) bool {
	return isWordStartJoin(c) || '0' <= c && c <= '9'
}
