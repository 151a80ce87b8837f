// LineSplitter: bytes of one stream into record texts, long lines into partial pieces.
#include "logs/line_splitter.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace fleetlet::logs {
namespace {

struct Piece {
  std::string text;
  bool partial;
  bool operator==(const Piece&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Piece& p) {
  return os << (p.partial ? "P:" : "F:") << p.text;
}

class Collect {
 public:
  LineSplitter::Emit emit() {
    return [this](std::string_view text, bool partial) {
      pieces.push_back({std::string(text), partial});
    };
  }
  std::vector<Piece> pieces;
};

TEST(LineSplitter, SplitsAtNewlinesAcrossFeeds) {
  LineSplitter s(100);
  Collect c;
  s.feed("one\ntw", c.emit());
  EXPECT_EQ(c.pieces, (std::vector<Piece>{{"one", false}}));
  EXPECT_EQ(s.buffered(), 2u);
  s.feed("o\n\nthree\n", c.emit());
  EXPECT_EQ(c.pieces,
            (std::vector<Piece>{{"one", false}, {"two", false}, {"", false}, {"three", false}}));
  EXPECT_EQ(s.buffered(), 0u);
}

TEST(LineSplitter, CutsLongLinesIntoPartialPieces) {
  LineSplitter s(4);
  Collect c;
  s.feed("abcdefghij\n", c.emit());
  EXPECT_EQ(c.pieces, (std::vector<Piece>{{"abcd", true}, {"efgh", true}, {"ij", false}}));
}

TEST(LineSplitter, CutsLongLinesThatArriveInDribbles) {
  LineSplitter s(4);
  Collect c;
  for (char ch : std::string("abcdefghij\n")) s.feed(std::string_view(&ch, 1), c.emit());
  EXPECT_EQ(c.pieces, (std::vector<Piece>{{"abcd", true}, {"efgh", true}, {"ij", false}}));
}

TEST(LineSplitter, ALineOfExactlyMaxLineIsOneFullPiece) {
  LineSplitter s(4);
  Collect c;
  s.feed("abcd", c.emit());
  EXPECT_TRUE(c.pieces.empty());
  s.feed("\nabcdefgh\n", c.emit());
  EXPECT_EQ(c.pieces, (std::vector<Piece>{{"abcd", false}, {"abcd", true}, {"efgh", false}}));
}

TEST(LineSplitter, FinishEmitsTheUnterminatedRestAsFull) {
  LineSplitter s(4);
  Collect c;
  s.finish(c.emit());
  EXPECT_TRUE(c.pieces.empty());
  s.feed("x\nabcdef", c.emit());
  s.finish(c.emit());
  EXPECT_EQ(c.pieces, (std::vector<Piece>{{"x", false}, {"abcd", true}, {"ef", false}}));
  s.finish(c.emit());
  EXPECT_EQ(c.pieces.size(), 3u);
}

TEST(LineSplitter, KeepsBytesVerbatim) {
  LineSplitter s(100);
  Collect c;
  std::string binary("a\0b\r\xff", 5);
  s.feed(binary + "\n", c.emit());
  ASSERT_EQ(c.pieces.size(), 1u);
  EXPECT_EQ(c.pieces[0].text, binary);
}

}  // namespace
}  // namespace fleetlet::logs
