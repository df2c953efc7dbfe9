// Behaviour every page shares, kept out of the HTML so that the Content-Security-Policy can allow
// scripts from this site only (no inline script, no on* attributes):
//  - the team switcher submits itself when a team is chosen;
//  - a form with data-confirm asks that question before it is sent.
(function () {
  var teamSwitch = document.getElementById("team-switch");
  if (teamSwitch) teamSwitch.addEventListener("change", function () { teamSwitch.form.submit(); });

  document.addEventListener("submit", function (e) {
    var question = e.target.getAttribute && e.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) e.preventDefault();
  }, true);
})();
