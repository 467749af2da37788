// imagehub console: copy buttons and a deployment's progress (CSP: script-src 'self', no inline code).
"use strict";
(function () {
  var IN_PROGRESS = ["pending", "pulling", "starting", "deleting"];

  function statusClass(status) {
    return "status-" + String(status || "unknown").toLowerCase().replace(/[^a-z]+/g, "-").replace(/^-+|-+$/g, "");
  }

  function setUpCopyButtons() {
    if (!navigator.clipboard) { return; }
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () {
        var source = document.getElementById(button.getAttribute("data-copy"));
        if (!source) { return; }
        navigator.clipboard.writeText(source.textContent.trim()).then(function () {
          button.textContent = "Copied";
          setTimeout(function () { button.textContent = "Copy"; }, 2000);
        }, function () { button.textContent = "Copy failed"; });
      });
    });
  }

  function cell(text) {
    var td = document.createElement("td");
    td.textContent = text === null || text === undefined || text === "" ? "—" : String(text);
    return td;
  }

  function showInstances(instances) {
    var table = document.querySelector("[data-testid=instance-list] tbody");
    if (!table) { return; }
    table.replaceChildren();
    (instances || []).forEach(function (i) {
      var row = document.createElement("tr");
      row.setAttribute("data-testid", "instance-item");
      [i.host, i.address, i.state + (i.reason ? " (" + i.reason + ")" : ""), i.revision, i.started_at].forEach(function (v) {
        row.appendChild(cell(v));
      });
      table.appendChild(row);
    });
  }

  function followDeployment() {
    var box = document.querySelector("[data-deployment]");
    if (!box || IN_PROGRESS.indexOf(box.getAttribute("data-status")) < 0) { return; }
    var id = box.getAttribute("data-deployment");
    var badge = document.querySelector("h1 [data-testid=status-badge]");
    var failures = 0;
    function poll() {
      fetch("/api/v1/deployments/" + encodeURIComponent(id), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (answer) {
          if (!answer.ok) { throw new Error("HTTP " + answer.status); }
          return answer.json();
        })
        .then(function (d) {
          failures = 0;
          if (badge) {
            badge.textContent = d.status;
            badge.className = "badge " + statusClass(d.status);
            badge.setAttribute("data-status", d.status);
          }
          showInstances(d.instances);
          if (IN_PROGRESS.indexOf(d.status) >= 0) {
            setTimeout(poll, 2000);
          } else {
            window.location.reload();  // the revisions and forms as they are now
          }
        })
        .catch(function () {
          failures += 1;
          if (failures < 10) { setTimeout(poll, 4000); }
        });
    }
    setTimeout(poll, 1500);
  }

  document.addEventListener("DOMContentLoaded", function () {
    setUpCopyButtons();
    followDeployment();
  });
})();
