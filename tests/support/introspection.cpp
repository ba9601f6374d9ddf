#include "tests/support/introspection.hpp"

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace apikeyd::test {
namespace {

class XmlReader {
  public:
    explicit XmlReader(std::string_view text) : text_(text) {}

    XmlElement document() {
        skip_misc();
        XmlElement root = element();
        skip_misc();
        if (pos_ != text_.size()) {
            fail("content after the root element");
        }
        return root;
    }

  private:
    [[noreturn]] void fail(const std::string& what) const {
        throw std::runtime_error("XML: " + what + " at offset " + std::to_string(pos_));
    }

    bool starts_with(std::string_view s) const { return text_.substr(pos_).starts_with(s); }

    void skip_until(std::string_view end) {
        const size_t at = text_.find(end, pos_);
        if (at == std::string_view::npos) {
            fail("unterminated construct, expected '" + std::string(end) + "'");
        }
        pos_ = at + end.size();
    }

    void skip_space() {
        while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) {
            ++pos_;
        }
    }

    // Whitespace, comments, processing instructions, DOCTYPE, text.
    void skip_misc() {
        for (;;) {
            while (pos_ < text_.size() && text_[pos_] != '<') {
                ++pos_;
            }
            if (starts_with("<!--")) {
                skip_until("-->");
            } else if (starts_with("<?")) {
                skip_until("?>");
            } else if (starts_with("<!")) {
                skip_until(">");
            } else {
                return;
            }
        }
    }

    std::string name() {
        const size_t start = pos_;
        while (pos_ < text_.size() &&
               (std::isalnum(static_cast<unsigned char>(text_[pos_])) ||
                std::string_view("_-.:").find(text_[pos_]) != std::string_view::npos)) {
            ++pos_;
        }
        if (pos_ == start) {
            fail("expected a name");
        }
        return std::string(text_.substr(start, pos_ - start));
    }

    static std::string decode(std::string_view raw) {
        static const std::pair<std::string_view, char> entities[] = {
            {"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&quot;", '"'}, {"&apos;", '\''}};
        std::string out;
        for (size_t i = 0; i < raw.size();) {
            bool replaced = false;
            for (const auto& [entity, c] : entities) {
                if (raw.substr(i).starts_with(entity)) {
                    out.push_back(c);
                    i += entity.size();
                    replaced = true;
                    break;
                }
            }
            if (!replaced) {
                out.push_back(raw[i++]);
            }
        }
        return out;
    }

    XmlElement element() {
        if (!starts_with("<")) {
            fail("expected '<'");
        }
        ++pos_;
        XmlElement e;
        e.name = name();
        for (;;) {
            skip_space();
            if (starts_with("/>")) {
                pos_ += 2;
                return e;
            }
            if (starts_with(">")) {
                ++pos_;
                break;
            }
            std::string key = name();
            skip_space();
            if (!starts_with("=")) {
                fail("expected '=' after attribute " + key);
            }
            ++pos_;
            skip_space();
            if (pos_ >= text_.size() || (text_[pos_] != '"' && text_[pos_] != '\'')) {
                fail("expected a quoted value for attribute " + key);
            }
            const char quote = text_[pos_++];
            const size_t end = text_.find(quote, pos_);
            if (end == std::string_view::npos) {
                fail("unterminated attribute value");
            }
            e.attributes[key] = decode(text_.substr(pos_, end - pos_));
            pos_ = end + 1;
        }
        for (;;) {
            skip_misc();
            if (pos_ >= text_.size()) {
                fail("unterminated element " + e.name);
            }
            if (starts_with("</")) {
                pos_ += 2;
                if (name() != e.name) {
                    fail("mismatched end tag for " + e.name);
                }
                skip_space();
                if (!starts_with(">")) {
                    fail("expected '>'");
                }
                ++pos_;
                return e;
            }
            e.children.push_back(element());
        }
    }

    std::string_view text_;
    size_t pos_ = 0;
};

}  // namespace

XmlElement parse_xml(std::string_view text) {
    return XmlReader(text).document();
}

std::vector<std::string> interface_names(const XmlElement& root) {
    std::vector<std::string> names;
    for (const auto& child : root.children) {
        if (child.name == "interface") {
            names.push_back(child.attribute("name"));
        }
    }
    return names;
}

std::vector<std::string> interface_shape(const XmlElement& root, const std::string& interface) {
    const auto it = std::find_if(root.children.begin(), root.children.end(), [&](const auto& c) {
        return c.name == "interface" && c.attribute("name") == interface;
    });
    if (it == root.children.end()) {
        throw std::runtime_error("no interface " + interface + " in the introspection document");
    }
    std::vector<std::string> lines;
    for (const auto& member : it->children) {
        std::string line;
        if (member.name == "method" || member.name == "signal") {
            line = member.name + " " + member.attribute("name") + "(";
            bool first = true;
            for (const auto& arg : member.children) {
                if (arg.name != "arg") {
                    continue;
                }
                if (!first) {
                    line += ", ";
                }
                first = false;
                if (member.name == "method") {
                    const auto direction = arg.attribute("direction");
                    line += (direction.empty() ? "in" : direction) + " ";
                }
                line += arg.attribute("type") + " " + arg.attribute("name");
            }
            line += ")";
        } else if (member.name == "property") {
            line = "property " + member.attribute("name") + " " + member.attribute("type") + " " +
                   member.attribute("access");
        } else {
            continue;  // annotations
        }
        lines.push_back(line);
    }
    std::sort(lines.begin(), lines.end());
    return lines;
}

}  // namespace apikeyd::test
