#pragma once
// Minimal structural JSON scanning without building a DOM. Used to cut list
// responses and watch lines into the raw text of each object, so callers can
// parse (or project) one object at a time with whatever parser they like.
//
// The scanner checks structure only (strings, nesting); values it hands out
// are validated by whoever parses them. Pure functions, thread-safe.

#include <functional>
#include <string_view>

namespace exitrec::jsonscan {

// Returns the index one past the JSON value starting at or after `pos`
// (leading whitespace skipped), or npos when the text is malformed.
std::size_t skipValue(std::string_view text, std::size_t pos);

// Calls fn(rawKey, rawValue) for each member of the top-level object in
// `text`. rawKey is the key without quotes and without unescaping. Returns
// false if the text is not a well-formed object or fn returned false.
bool forEachMember(std::string_view text,
                   const std::function<bool(std::string_view key, std::string_view value)>& fn);

// Calls fn(rawElement) for each element of the array in `text`. Returns false
// if malformed or fn returned false.
bool forEachElement(std::string_view text, const std::function<bool(std::string_view)>& fn);

// The raw value of top-level member `key`, or empty when absent/malformed.
std::string_view member(std::string_view text, std::string_view key);

}  // namespace exitrec::jsonscan
