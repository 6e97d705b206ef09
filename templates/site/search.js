// tthc-sync: search and filters over the procedure list, without a server. The list is
// complete without this script; it only hides what does not match. `fold` must equal the
// Rust `text::search_key` (shared test vectors in tests/fixtures/search-folding.json).
"use strict";

function fold(text) {
  var out = "";
  var pending = false;
  var chars = Array.from(String(text).normalize("NFD"));
  for (var i = 0; i < chars.length; i++) {
    var c = chars[i];
    if (/\p{M}/u.test(c)) continue;
    if (c === "Đ" || c === "đ" || c === "Ð") c = "d";
    if (/[\p{Alphabetic}\p{N}]/u.test(c)) {
      if (pending && out.length > 0) out += " ";
      pending = false;
      out += c.toLowerCase();
    } else {
      pending = true;
    }
  }
  return out;
}

// Every word of the query is a whole word of the key (the command line's rule), or the query
// starts the code. While people type, the last word may be the start of a word: "dang ky kh"
// already finds "Đăng ký khai sinh".
function matches(query, key, code) {
  var words = fold(query).split(" ").filter(function (w) { return w.length > 0; });
  if (words.length === 0) return true;
  var raw = String(query).trim();
  if (raw.length > 0 && code.indexOf(raw) === 0) return true;
  var padded = " " + key + " ";
  var typing = !/\s$/.test(String(query));
  return words.every(function (w, i) {
    var last = typing && i === words.length - 1;
    return padded.indexOf(" " + w + (last ? "" : " ")) >= 0;
  });
}

if (typeof module !== "undefined") {
  module.exports = { fold: fold, matches: matches };
}

if (typeof document !== "undefined") {
  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("bo-loc");
    if (!form) return;
    var input = document.getElementById("tim");
    var mode = document.getElementById("muc-do");
    var status = document.getElementById("ket-qua");
    var items = Array.from(document.querySelectorAll("ul.procedures li"));
    var sections = Array.from(document.querySelectorAll("section.sector"));
    form.hidden = false;
    form.addEventListener("submit", function (e) { e.preventDefault(); });
    function apply() {
      var q = input.value;
      var m = mode.value;
      var shown = 0;
      items.forEach(function (li) {
        var code = (li.querySelector(".code") || { textContent: "" }).textContent;
        var ok = matches(q, li.getAttribute("data-key") || "", code) &&
          (m === "" || li.getAttribute("data-mode") === m);
        li.hidden = !ok;
        if (ok) shown++;
      });
      sections.forEach(function (s) {
        s.hidden = s.querySelector("li:not([hidden])") === null;
      });
      status.textContent = (q.trim() === "" && m === "") ? "" :
        "Tìm thấy " + shown + " thủ tục.";
    }
    input.addEventListener("input", apply);
    mode.addEventListener("change", apply);
    var params = new URLSearchParams(window.location.search);
    if (params.get("q")) { input.value = params.get("q"); }
    if (params.get("muc-do")) { mode.value = params.get("muc-do"); }
    apply();
  });
}
