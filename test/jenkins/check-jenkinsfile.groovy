// Parses the Jenkinsfile with the real Groovy parser and runs it against a stub of the declarative
// pipeline DSL that records what it declares. Prints one JSON document for the test to check.
// Usage: groovy test/jenkins/check-jenkinsfile.groovy Jenkinsfile [PARAM=value ...]
//
// Every DSL call is recorded as {name, args, children}; a closure argument runs at once with its
// calls as children. The Jenkinsfile's own functions (def f() {...}) run for real, so what they
// compute shows up as arguments, and what they call nests where they were called (as in Jenkins,
// the step a call lands in is the one running, whichever closure it was written in). parallel runs
// each branch, recorded as a child named "branch".
import groovy.json.JsonOutput

/** error('...') stops a real pipeline where it is called; so it does here, after it is recorded. */
class PipelineError extends RuntimeException {
  PipelineError(String message) { super(message) }
}

class Recorder {
  /** the recorder of the closure running now */
  static Recorder current
  List calls = []
  Map params
  Map env
  Script script

  def methodMissing(String name, Object args) {
    def list = args as List
    // the Jenkinsfile's own functions are code to run, not DSL to record
    if (script.metaClass.respondsTo(script, name, *list)) return script.invokeMethod(name, args)
    def closure = list.find { it instanceof Closure }
    def plain = list.findAll { !(it instanceof Closure) }.collect { plainValue(it) }
    def entry = [name: name, args: plain, children: []]
    current.calls << entry
    if (name == 'error') throw new PipelineError(plain[0]?.toString())
    if (name == 'parallel') {
      list[0].each { k, v ->
        if (!(v instanceof Closure)) return
        def branch = [name: 'branch', args: [k], children: []]
        entry.children << branch
        run(v, branch)
      }
    } else if (closure) {
      def result = run(closure, entry)
      if (name == 'expression') entry.value = result
    }
    return entry
  }

  /** Runs a closure with its DSL calls recorded as the entry's children (also when error() stops it). */
  def run(Closure closure, Map entry) {
    def child = new Recorder(params: params, env: env, script: script, calls: entry.children)
    closure.delegate = child
    closure.resolveStrategy = Closure.DELEGATE_FIRST
    def outer = current
    current = child
    try {
      return closure.call()
    } finally {
      current = outer
    }
  }

  static plainValue(value) {
    if (value instanceof Map) return value.collectEntries { k, v -> [k, v instanceof Closure ? '<closure>' : plainValue(v)] }
    if (value instanceof List) return value.collect { plainValue(it) }
    if (value instanceof Number || value instanceof Boolean || value == null) return value
    return value.toString()
  }

  def propertyMissing(String name) {
    if (name == 'params') return params
    if (name == 'env') return env
    return '${' + name + '}'
  }
}

def file = new File(args[0])
def shell = new GroovyShell()
def script = shell.parse(file)          // syntax errors fail here, with line and column
def params = [ENV: 'production', ACTION: 'deploy', ROLE: 'fleet', TAG: 'v1.5.0', FLEET_HOSTS: '', FLEET_GROUPS: '', TIMEOUT_MINUTES: '']
args.drop(1).each { pair -> def (k, v) = pair.split('=', 2); params[k] = v }
def recorder = new Recorder(params: params, env: [WORKSPACE: '/var/lib/jenkins/workspace/voxops', BUILD_URL: 'https://jenkins.example/job/voxops/1/'], script: script)
Recorder.current = recorder
script.metaClass.methodMissing = { String name, Object a -> Recorder.current.methodMissing(name, a) }
script.metaClass.propertyMissing = { String name -> recorder.propertyMissing(name) }
script.binding.setVariable('params', params)
script.binding.setVariable('env', recorder.env)
try {
  script.run()
} catch (PipelineError stopped) {
  // what ran until then is the record: the error call is its last entry
}
println JsonOutput.toJson(recorder.calls)
