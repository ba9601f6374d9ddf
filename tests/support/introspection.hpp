#pragma once
// Reading D-Bus introspection XML: a tiny XML reader (elements and
// attributes; comments, DOCTYPE and text are skipped) and a normalised view
// of one interface that two documents can be compared by.

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace apikeyd::test {

struct XmlElement {
    std::string name;
    std::map<std::string, std::string> attributes;
    std::vector<XmlElement> children;

    std::string attribute(const std::string& key) const {
        const auto it = attributes.find(key);
        return it == attributes.end() ? "" : it->second;
    }
};

// Parses one document; throws std::runtime_error with the offset on malformed input.
XmlElement parse_xml(std::string_view text);

// One line per member, sorted by member so that order in the document does
// not matter but argument order does:
//   "method CreateKey(in s name, in s description, in as scopes, in a{sv} options, out s id, out s
//   key)" "signal KeyCreated(s id)" "property Version s read"
// Annotations are left out. Throws if the document has no such interface.
std::vector<std::string> interface_shape(const XmlElement& root, const std::string& interface);

// The names of the interfaces the document describes.
std::vector<std::string> interface_names(const XmlElement& root);

}  // namespace apikeyd::test
